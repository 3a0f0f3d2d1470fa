//! A small HTTP/1.1 load driver for the Worker on 127.0.0.1: keep-alive connections, one thread
//! each, every run bounded by a request count and a deadline. Loopback only, by construction:
//! [`Client::connect`] takes a port, never a host.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// One keep-alive connection to `127.0.0.1:port`.
pub struct Client {
    port: u16,
    conn: Option<BufReader<TcpStream>>,
}

impl Client {
    pub fn connect(port: u16) -> Client {
        Client { port, conn: None }
    }

    fn stream(&mut self) -> std::io::Result<&mut BufReader<TcpStream>> {
        if self.conn.is_none() {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
            let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(Duration::from_secs(30)))?;
            self.conn = Some(BufReader::new(s));
        }
        Ok(self.conn.as_mut().expect("just connected"))
    }

    /// Send one request; reconnects once if the kept-alive connection was closed.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> std::io::Result<Response> {
        if let Ok(r) = self.try_request(method, path, body) {
            Ok(r)
        } else {
            self.conn = None;
            self.try_request(method, path, body)
        }
    }

    fn try_request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> std::io::Result<Response> {
        let port = self.port;
        let s = self.stream()?;
        let body = body.unwrap_or("");
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {BENCH_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let w = s.get_mut();
        w.write_all(head.as_bytes())?;
        w.write_all(body.as_bytes())?;
        read_response(s)
    }
}

fn bad(msg: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.to_string())
}

fn read_response(r: &mut BufReader<TcpStream>) -> std::io::Result<Response> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(bad("connection closed"));
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let mut length: Option<usize> = None;
    let mut chunked = false;
    loop {
        line.clear();
        r.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            let k = k.trim().to_ascii_lowercase();
            let v = v.trim();
            if k == "content-length" {
                length = v.parse().ok();
            } else if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                chunked = true;
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            r.read_line(&mut line)?;
            let n = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| bad("bad chunk size"))?;
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        r.read_exact(&mut body)?;
    }
    Ok(Response { status, body })
}

/// What a closed-loop run did.
pub struct Run {
    pub ok: usize,
    pub failed: usize,
    pub seconds: f64,
}

impl Run {
    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.seconds
    }
}

/// `requests` requests over `connections` keep-alive connections (closed loop), stopping early
/// at `deadline`. `request(i)` gives the i-th request's method, path and body.
pub fn closed_loop(
    port: u16,
    connections: usize,
    requests: usize,
    deadline: Duration,
    request: impl Fn(usize) -> (&'static str, String, Option<String>) + Sync,
) -> Run {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicUsize::new(0);
    let ok = std::sync::atomic::AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..connections {
            s.spawn(|| {
                let mut c = Client::connect(port);
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= requests || start.elapsed() > deadline {
                        break;
                    }
                    let (m, p, b) = request(i);
                    match c.request(m, &p, b.as_deref()) {
                        Ok(r) if r.status < 300 => {
                            ok.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                        }
                        _ => failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                    };
                }
            });
        }
    });
    Run {
        ok: ok.into_inner(),
        failed: failed.into_inner(),
        seconds: start.elapsed().as_secs_f64(),
    }
}

/// What an open-loop run saw: each request's latency from the moment it was due (ms), so a
/// server falling behind shows as latency, not as a lower offered rate.
pub struct Paced {
    pub latencies_ms: Vec<f64>,
    pub failed: usize,
    /// Requests per second actually completed.
    pub rate: f64,
}

/// `requests` requests offered at `rate` per second (open loop), spread over `connections`
/// keep-alive connections (request `i` on connection `i % connections`).
pub fn open_loop(
    port: u16,
    connections: usize,
    requests: usize,
    rate: f64,
    request: impl Fn(usize) -> (&'static str, String, Option<String>) + Sync,
) -> Paced {
    let lat = std::sync::Mutex::new(Vec::with_capacity(requests));
    let failed = std::sync::atomic::AtomicUsize::new(0);
    let start = Instant::now() + Duration::from_millis(20);
    std::thread::scope(|s| {
        for k in 0..connections {
            let (lat, failed, request) = (&lat, &failed, &request);
            s.spawn(move || {
                let mut c = Client::connect(port);
                let mut i = k;
                while i < requests {
                    let due = start + Duration::from_secs_f64(i as f64 / rate);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let (m, p, b) = request(i);
                    match c.request(m, &p, b.as_deref()) {
                        Ok(r) if r.status < 300 => {
                            lat.lock().unwrap().push(due.elapsed().as_secs_f64() * 1e3);
                        }
                        _ => {
                            failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                    i += connections;
                }
            });
        }
    });
    let latencies_ms = lat.into_inner().unwrap();
    let seconds = start.elapsed().as_secs_f64().max(1e-9);
    Paced {
        rate: latencies_ms.len() as f64 / seconds,
        latencies_ms,
        failed: failed.into_inner(),
    }
}

/// The token the bench's Worker config allows for every room (the example serves nothing
/// without a policy's consent).
pub const BENCH_TOKEN: &str = "nanotype-bench";
