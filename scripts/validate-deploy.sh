#!/usr/bin/env bash
# Checks deploy/ without a Docker engine or a cluster:
# - every Kubernetes manifest against the Kubernetes API schemas (kubernetes-validate from
#   PyPI, --strict: unknown fields are errors);
# - the compose file parses, and every `lambda` subcommand and LAMBDA_* variable that the
#   compose file and the manifests use exists in the binary (the configuration values are
#   the ones the tests exercise).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/lambda-target}
KV_VERSION=1.37.0

if ! kubernetes-validate --version 2>/dev/null | grep -q "$KV_VERSION"; then
  python3 -m pip install --quiet --disable-pip-version-check "kubernetes-validate==$KV_VERSION"
fi
echo "== kubernetes-validate --strict deploy/k8s/*.yaml"
kubernetes-validate --strict --quiet deploy/k8s/*.yaml

lambda="$CARGO_TARGET_DIR/debug/lambda"
[ -x "$lambda" ] || cargo build --locked --bin lambda
echo "== compose file and configuration names"
python3 - "$lambda" <<'PY'
import glob, re, subprocess, sys, yaml

lambda_bin = sys.argv[1]
helptext = subprocess.run([lambda_bin, "--help"], capture_output=True, text=True, check=True).stdout
subcommands = set(re.findall(r"^  ([a-z][a-z-]*)\s", helptext, re.M))
sources = "".join(open(p).read() for p in glob.glob("src/*.rs") + glob.glob("*/src/*.rs"))
known_env = set(re.findall(r'env = "(LAMBDA_[A-Z_]+)"', sources)) | {"LAMBDA_LOG"}
errors = []

def check_env(where, names):
    for n in names:
        if n.startswith("LAMBDA_") and n not in known_env:
            errors.append(f"{where}: {n} is not read by lambda")

compose = yaml.safe_load(open("deploy/compose.yaml"))
for name, svc in compose["services"].items():
    if "image" not in svc and "build" not in svc:
        errors.append(f"compose service {name}: no image")
    if svc.get("image") == "lambda:dev":
        check_env(f"compose {name}", svc.get("environment", {}))
        cmd = svc.get("command", [])
        text = " ".join(cmd) if isinstance(cmd, list) else cmd
        used = re.findall(r"\blambda ([a-z]+)\b", text) if svc.get("entrypoint") else [cmd[0]]
        if not used:
            errors.append(f"compose {name}: runs no lambda subcommand")
        for sub in used:
            if sub not in subcommands:
                errors.append(f"compose {name}: `{sub}` is not a lambda subcommand")

for path in sorted(glob.glob("deploy/k8s/*.yaml")):
    for doc in yaml.safe_load_all(open(path)):
        if doc.get("kind") == "ConfigMap" or doc.get("kind") == "Secret":
            check_env(path, list(doc.get("data", {})) + list(doc.get("stringData", {})))
        text = yaml.safe_dump(doc)
        for sub in re.findall(r"args:\n\s*- ([a-z]+)\n", text):
            if sub not in subcommands:
                errors.append(f"{path}: `{sub}` is not a lambda subcommand")
        for sub in re.findall(r"exec lambda ([a-z]+)", text):
            if sub not in subcommands:
                errors.append(f"{path}: `{sub}` is not a lambda subcommand")

if errors:
    print("\n".join(errors))
    sys.exit(1)
print(f"compose services: {len(compose['services'])}; lambda subcommands: {sorted(subcommands)}")
PY
