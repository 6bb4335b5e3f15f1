//! The client: one keep-alive HTTP/1.1 connection speaking AWS JSON 1.0 with
//! raw requests, and the few SQS calls the measurements share.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};

use serde_json::{Value, json};

use super::BODY_BYTES;

const AUTH: &str = "AWS4-HMAC-SHA256 Credential=x/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=0";

/// One keep-alive HTTP/1.1 connection speaking AWS JSON 1.0.
pub(super) struct Conn {
    addr: SocketAddr,
    reader: Option<BufReader<TcpStream>>,
    request: Vec<u8>,
    reconnects: u64,
}

impl Conn {
    pub(super) fn new(addr: SocketAddr) -> Conn {
        let mut conn = Conn {
            addr,
            reader: None,
            request: Vec::with_capacity(4096),
            reconnects: 0,
        };
        conn.ensure_open();
        conn
    }

    /// Opens the connection if the server closed it (moto closes after every answer).
    pub(super) fn ensure_open(&mut self) {
        if self.reader.is_none() {
            let stream = TcpStream::connect(self.addr).expect("connect");
            stream.set_nodelay(true).expect("nodelay");
            self.reader = Some(BufReader::with_capacity(64 * 1024, stream));
            self.reconnects += 1;
        }
    }

    /// Writes a request without waiting for the answer.
    pub(super) fn send(&mut self, op: &str, body: &str) {
        self.ensure_open();
        self.request.clear();
        write!(
            self.request,
            "POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-amz-json-1.0\r\n\
             X-Amz-Target: AmazonSQS.{op}\r\nAuthorization: {AUTH}\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        )
        .expect("format");
        self.request.extend_from_slice(body.as_bytes());
        let reader = self.reader.as_mut().expect("open");
        reader
            .get_mut()
            .write_all(&self.request)
            .expect("write request");
    }

    /// Reads one answer: status and body.
    pub(super) fn receive(&mut self) -> (u16, Vec<u8>) {
        let reader = self.reader.as_mut().expect("open");
        let mut line = String::new();
        reader.read_line(&mut line).expect("read status");
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {line:?}"));
        let mut length = None;
        let mut chunked = false;
        let mut close = false;
        loop {
            line.clear();
            reader.read_line(&mut line).expect("read header");
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let Some((name, value)) = header.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<usize>().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                reader.read_line(&mut line).expect("chunk size");
                let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                    .expect("chunk size");
                let mut chunk = vec![0; size + 2];
                reader.read_exact(&mut chunk).expect("chunk");
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else if let Some(length) = length {
            body.resize(length, 0);
            reader.read_exact(&mut body).expect("body");
        } else {
            reader.read_to_end(&mut body).expect("body");
            close = true;
        }
        if close {
            self.reader = None;
        }
        (status, body)
    }

    pub(super) fn call(&mut self, op: &str, body: &str) -> (u16, Vec<u8>) {
        self.send(op, body);
        self.receive()
    }

    /// A call that must succeed; returns the parsed answer.
    pub(super) fn ok(&mut self, op: &str, body: &str) -> Value {
        let (status, answer) = self.call(op, body);
        assert_eq!(
            status,
            200,
            "{op} failed: {}",
            String::from_utf8_lossy(&answer)
        );
        serde_json::from_slice(&answer).unwrap_or(Value::Null)
    }
}

pub(super) fn create_queue(conn: &mut Conn, name: &str) -> String {
    let answer = conn.ok("CreateQueue", &json!({ "QueueName": name }).to_string());
    answer["QueueUrl"].as_str().expect("QueueUrl").to_owned()
}

pub(super) fn delete_queue(conn: &mut Conn, url: &str) {
    conn.ok("DeleteQueue", &json!({ "QueueUrl": url }).to_string());
}

pub(super) fn send_body(url: &str) -> String {
    json!({ "QueueUrl": url, "MessageBody": "x".repeat(BODY_BYTES) }).to_string()
}

pub(super) fn receipt_handles(answer: &Value) -> Vec<String> {
    answer["Messages"]
        .as_array()
        .map(|messages| {
            messages
                .iter()
                .filter_map(|m| m["ReceiptHandle"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
