//! A minimal HTTP/1.1 client for tests that call the platform's endpoints (one request per
//! connection, `Connection: close`, as axum answers).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Sends one request to `http://{addr}{path}` with extra `headers` and `body`: the status
/// code and the body; `None` when nothing answers.
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<(u16, Vec<u8>)> {
    request_with_head(addr, method, path, headers, body).map(|(status, _, body)| (status, body))
}

/// [`request`], also returning the response's head (status line and headers) as text.
pub fn request_with_head(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<(u16, String, Vec<u8>)> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .ok()?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).ok()?;
    // A server may answer (413) and close before reading a large body: keep what it said.
    let _ = stream.write_all(body);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let split = response.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, head, response[split + 4..].to_vec()))
}

/// `GET http://{addr}{path}`: the status code and the body; `None` when nothing answers.
pub fn get(addr: &str, path: &str) -> Option<(u16, Vec<u8>)> {
    request(addr, "GET", path, &[], &[])
}

/// A free loopback address for a server under test.
pub fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("address").to_string()
}
