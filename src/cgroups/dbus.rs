//! A small D-Bus client for the few calls the systemd cgroup driver makes on the system bus
//! (`StartTransientUnit`, `StopUnit`, `SetUnitProperties`, `ResetFailedUnit` and the
//! `JobRemoved` signal). Why not a crate: zbus pulls an async executor and a few hundred
//! kilobytes into a binary that starts twice per container; libsystemd's sd-bus has no static
//! library on Debian, and the release build is static. The wire format is small: this file
//! speaks the little-endian subset of it, EXTERNAL authentication, no fd passing.
//!
//! Message layout (D-Bus specification, "Message Format"): a 12-byte fixed header
//! (endianness, type, flags, version, body length, serial), an array of (code, variant) header
//! fields, padding to 8, then the body; every value is aligned to its natural size.

use crate::error::{Error, Result};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

const METHOD_CALL: u8 = 1;
const METHOD_RETURN: u8 = 2;
const ERROR: u8 = 3;
const SIGNAL: u8 = 4;

/// A value of the few types the calls need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Bool(bool),
    Str(String),
    U64(u64),
    /// `au`: a list of pids.
    U32s(Vec<u32>),
    /// `ay`: a bitmask (AllowedCPUs, AllowedMemoryNodes).
    Bytes(Vec<u8>),
    /// `a(ss)`: DeviceAllow's (path, permissions) pairs.
    StrPairs(Vec<(String, String)>),
}

impl Value {
    fn signature(&self) -> &'static str {
        match self {
            Value::Bool(_) => "b",
            Value::Str(_) => "s",
            Value::U64(_) => "t",
            Value::U32s(_) => "au",
            Value::Bytes(_) => "ay",
            Value::StrPairs(_) => "a(ss)",
        }
    }

    fn encode(&self, e: &mut Enc) {
        match self {
            Value::Bool(b) => e.u32(*b as u32),
            Value::Str(s) => e.str(s),
            Value::U64(v) => e.u64(*v),
            Value::U32s(v) => e.array(4, |e| v.iter().for_each(|x| e.u32(*x))),
            Value::Bytes(v) => e.array(1, |e| v.iter().for_each(|x| e.u8(*x))),
            Value::StrPairs(v) => e.array(8, |e| {
                for (a, b) in v {
                    e.pad(8);
                    e.str(a);
                    e.str(b);
                }
            }),
        }
    }
}

/// A unit property: `(sv)`.
pub type Property = (String, Value);

/// An argument of a method call.
pub enum Arg<'a> {
    Str(&'a str),
    Bool(bool),
    Props(&'a [Property]),
    /// `a(sa(sv))`, always empty here (no auxiliary units).
    NoAux,
}

impl Arg<'_> {
    fn signature(&self) -> &'static str {
        match self {
            Arg::Str(_) => "s",
            Arg::Bool(_) => "b",
            Arg::Props(_) => "a(sv)",
            Arg::NoAux => "a(sa(sv))",
        }
    }
}

/// Marshalling into a little-endian message.
struct Enc {
    buf: Vec<u8>,
}

impl Enc {
    fn pad(&mut self, n: usize) {
        while self.buf.len() % n != 0 {
            self.buf.push(0);
        }
    }
    fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.pad(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.pad(8);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }
    fn sig(&mut self, s: &str) {
        self.u8(s.len() as u8);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }
    /// An array whose elements align to `align`; the length excludes the padding after it.
    fn array(&mut self, align: usize, f: impl FnOnce(&mut Enc)) {
        self.u32(0);
        let len_at = self.buf.len() - 4;
        self.pad(align);
        let start = self.buf.len();
        f(self);
        let len = (self.buf.len() - start) as u32;
        self.buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
    }
    fn variant(&mut self, v: &Value) {
        self.sig(v.signature());
        v.encode(self);
    }
    fn arg(&mut self, a: &Arg) {
        match a {
            Arg::Str(s) => self.str(s),
            Arg::Bool(b) => self.u32(*b as u32),
            Arg::Props(ps) => self.array(8, |e| {
                for (name, v) in ps.iter() {
                    e.pad(8);
                    e.str(name);
                    e.variant(v);
                }
            }),
            Arg::NoAux => self.array(8, |_| {}),
        }
    }
}

/// Unmarshalling of the values the driver reads: strings, object paths, signatures, u32.
struct Dec<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Dec<'_> {
    fn bad() -> Error {
        Error::container("D-Bus: malformed message from the bus")
    }
    fn align(&mut self, n: usize) {
        self.pos = self.pos.div_ceil(n) * n;
    }
    fn u8(&mut self) -> Result<u8> {
        let v = *self.buf.get(self.pos).ok_or_else(Self::bad)?;
        self.pos += 1;
        Ok(v)
    }
    fn u32(&mut self) -> Result<u32> {
        self.align(4);
        let b = self.buf.get(self.pos..self.pos + 4).ok_or_else(Self::bad)?;
        self.pos += 4;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn bytes_nul(&mut self, len: usize) -> Result<String> {
        let b = self
            .buf
            .get(self.pos..self.pos + len)
            .ok_or_else(Self::bad)?;
        self.pos += len + 1;
        Ok(String::from_utf8_lossy(b).into_owned())
    }
    fn str(&mut self) -> Result<String> {
        let len = self.u32()? as usize;
        self.bytes_nul(len)
    }
    fn sig(&mut self) -> Result<String> {
        let len = self.u8()? as usize;
        self.bytes_nul(len)
    }
    /// One value of a basic type named by `sig` (header fields, signal arguments).
    fn basic(&mut self, sig: char) -> Result<Field> {
        Ok(match sig {
            's' | 'o' => Field::Str(self.str()?),
            'g' => Field::Str(self.sig()?),
            'u' => Field::U32(self.u32()?),
            _ => return Err(Self::bad()),
        })
    }
}

enum Field {
    Str(String),
    U32(u32),
}

/// A message read from the bus.
#[derive(Debug, Default)]
pub struct Msg {
    pub kind: u8,
    pub serial: u32,
    pub reply_serial: u32,
    pub member: String,
    pub error_name: String,
    pub signature: String,
    pub body: Vec<u8>,
}

impl Msg {
    /// The body's arguments, when they are all strings, object paths, u32s, or variants
    /// of those.
    pub fn args(&self) -> Result<Vec<String>> {
        let mut d = Dec {
            buf: &self.body,
            pos: 0,
        };
        let mut out = Vec::new();
        for c in self.signature.chars() {
            // A variant of a basic type (Properties.Get) reads as its value.
            let c = if c == 'v' {
                d.sig()?.chars().next().ok_or_else(Dec::bad)?
            } else {
                c
            };
            out.push(match d.basic(c)? {
                Field::Str(s) => s,
                Field::U32(v) => v.to_string(),
            });
        }
        Ok(out)
    }
}

pub struct Conn {
    sock: UnixStream,
    serial: u32,
    /// Signals read while waiting for a reply, for `wait_signal`.
    pending: Vec<Msg>,
}

/// A failed call: the bus's error name (`org.freedesktop.systemd1.UnitExists`) and message.
#[derive(Debug)]
pub struct CallError {
    pub name: String,
    pub message: String,
}

impl Conn {
    /// Connect to the system bus (`DBUS_SYSTEM_BUS_ADDRESS` if it names a `unix:path=`),
    /// authenticate as our uid and say Hello.
    pub fn system(timeout: Duration) -> Result<Conn> {
        let path = std::env::var("DBUS_SYSTEM_BUS_ADDRESS")
            .ok()
            .and_then(|a| {
                a.split(';')
                    .find_map(|p| p.strip_prefix("unix:path=").map(|s| s.to_string()))
            })
            .unwrap_or_else(|| "/run/dbus/system_bus_socket".to_string());
        let sock = crate::sys::socket::connect_timed(
            std::path::Path::new(&path),
            timeout,
            "the system bus",
        )?;
        let io = |e: std::io::Error| {
            Error::sys("talk to the system bus", &path, crate::error::io_errno(&e))
        };
        let mut c = Conn {
            sock,
            serial: 0,
            pending: Vec::new(),
        };
        let uid: String = crate::sys::proc::geteuid()
            .to_string()
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        c.sock
            .write_all(format!("\0AUTH EXTERNAL {uid}\r\n").as_bytes())
            .map_err(io)?;
        let line = c.read_line().map_err(io)?;
        if !line.starts_with("OK ") {
            return Err(Error::container(format!(
                "the system bus refused authentication: {}",
                line.trim()
            )));
        }
        c.sock.write_all(b"BEGIN\r\n").map_err(io)?;
        c.call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "Hello",
            &[],
        )?
        .map_err(|e| Error::container(format!("D-Bus Hello: {}: {}", e.name, e.message)))?;
        Ok(c)
    }

    fn read_line(&mut self) -> std::io::Result<String> {
        let mut out = Vec::new();
        let mut b = [0u8; 1];
        while !out.ends_with(b"\r\n") && out.len() < 4096 {
            self.sock.read_exact(&mut b)?;
            out.push(b[0]);
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// Call a method and wait for its reply; a D-Bus error is the inner `Err`.
    pub fn call(
        &mut self,
        dest: &str,
        path: &str,
        iface: &str,
        member: &str,
        args: &[Arg],
    ) -> Result<std::result::Result<Msg, CallError>> {
        self.serial += 1;
        let serial = self.serial;
        let sig: String = args.iter().map(|a| a.signature()).collect();
        let mut body = Enc { buf: Vec::new() };
        for a in args {
            body.arg(a);
        }
        let mut m = Enc { buf: Vec::new() };
        m.u8(b'l');
        m.u8(METHOD_CALL);
        m.u8(0);
        m.u8(1);
        m.u32(body.buf.len() as u32);
        m.u32(serial);
        let fields: [(u8, char, &str); 5] = [
            (1, 'o', path),
            (2, 's', iface),
            (3, 's', member),
            (6, 's', dest),
            (8, 'g', &sig),
        ];
        m.array(8, |e| {
            for (code, t, v) in fields {
                if t == 'g' && v.is_empty() {
                    continue;
                }
                e.pad(8);
                e.u8(code);
                e.sig(&t.to_string());
                if t == 'g' {
                    e.sig(v)
                } else {
                    e.str(v)
                }
            }
        });
        m.pad(8);
        m.buf.extend_from_slice(&body.buf);
        self.sock
            .write_all(&m.buf)
            .map_err(|e| self.io_err(member, e))?;
        loop {
            let msg = self.read_msg(member)?;
            match msg.kind {
                METHOD_RETURN if msg.reply_serial == serial => return Ok(Ok(msg)),
                ERROR if msg.reply_serial == serial => {
                    let message = msg.args().ok().and_then(|a| a.into_iter().next());
                    return Ok(Err(CallError {
                        name: msg.error_name,
                        message: message.unwrap_or_default(),
                    }));
                }
                SIGNAL => self.pending.push(msg),
                _ => {}
            }
        }
    }

    /// Wait for a signal `member` whose arguments satisfy `want` (signals already read
    /// while waiting for replies count).
    pub fn wait_signal(
        &mut self,
        member: &str,
        want: impl Fn(&[String]) -> bool,
    ) -> Result<Vec<String>> {
        loop {
            let msg = match self.pending.iter().position(|m| m.member == member) {
                Some(i) => self.pending.remove(i),
                None => self.read_msg(member)?,
            };
            if msg.kind == SIGNAL && msg.member == member {
                let args = msg.args()?;
                if want(&args) {
                    return Ok(args);
                }
            }
        }
    }

    fn io_err(&self, what: &str, e: std::io::Error) -> Error {
        if matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ) {
            return Error::container(format!("D-Bus {what}: no answer from the system bus"));
        }
        Error::sys(
            format!("D-Bus {what}"),
            "/run/dbus/system_bus_socket",
            crate::error::io_errno(&e),
        )
    }

    fn read_msg(&mut self, what: &str) -> Result<Msg> {
        let mut fixed = [0u8; 16];
        self.sock
            .read_exact(&mut fixed)
            .map_err(|e| self.io_err(what, e))?;
        if fixed[0] != b'l' {
            return Err(Error::container(
                "D-Bus: a big-endian message (not supported)",
            ));
        }
        let le =
            |i: usize| u32::from_le_bytes([fixed[i], fixed[i + 1], fixed[i + 2], fixed[i + 3]]);
        let body_len = le(4) as usize;
        let fields_len = le(12) as usize;
        if body_len > 64 << 20 || fields_len > 64 << 20 {
            return Err(Dec::bad());
        }
        let rest = (16 + fields_len).div_ceil(8) * 8 - 16 + body_len;
        let mut buf = fixed.to_vec();
        buf.resize(16 + rest, 0);
        self.sock
            .read_exact(&mut buf[16..])
            .map_err(|e| self.io_err(what, e))?;
        let mut msg = Msg {
            kind: fixed[1],
            serial: le(8),
            ..Default::default()
        };
        let mut d = Dec {
            buf: &buf[..16 + fields_len],
            pos: 16,
        };
        while d.pos < 16 + fields_len {
            d.align(8);
            let code = d.u8()?;
            let sig = d.sig()?;
            let c = sig.chars().next().ok_or_else(Dec::bad)?;
            let v = d.basic(c)?;
            match (code, v) {
                (3, Field::Str(s)) => msg.member = s,
                (4, Field::Str(s)) => msg.error_name = s,
                (5, Field::U32(v)) => msg.reply_serial = v,
                (8, Field::Str(s)) => msg.signature = s,
                _ => {}
            }
        }
        msg.body = buf[buf.len() - body_len..].to_vec();
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_marshal_as_the_spec_says() {
        let mut e = Enc { buf: vec![0] }; // one byte in: the array length aligns to 4
        e.arg(&Arg::Props(&[
            ("Delegate".into(), Value::Bool(true)),
            ("PIDs".into(), Value::U32s(vec![7])),
        ]));
        let want: Vec<u8> = [
            &[0, 0, 0, 0][..], // the byte already there, padding to 4
            &[48, 0, 0, 0],    // array length in bytes (from offset 8)
            &[8, 0, 0, 0],     // "Delegate" at 8
            b"Delegate\0",
            &[1, b'b', 0], // signature "b", ends at 24: aligned
            &[1, 0, 0, 0], // true
            &[0, 0, 0, 0], // the next struct aligns to 8
            &[4, 0, 0, 0], // "PIDs" at 32
            b"PIDs\0",
            &[2, b'a', b'u', 0], // signature "au"
            &[0, 0, 0],          // pad to 4
            &[4, 0, 0, 0],       // array of 4 bytes
            &[7, 0, 0, 0],
        ]
        .concat();
        assert_eq!(e.buf, want);
    }

    #[test]
    fn byte_arrays_marshal_unpadded() {
        let mut e = Enc { buf: Vec::new() };
        e.arg(&Arg::Props(&[(
            "AllowedCPUs".into(),
            Value::Bytes(vec![3, 1]),
        )]));
        let want: Vec<u8> = [
            &[26, 0, 0, 0][..], // array length in bytes (from offset 8)
            &[0, 0, 0, 0],      // the struct aligns to 8
            &[11, 0, 0, 0],
            b"AllowedCPUs\0",
            &[2, b'a', b'y', 0], // signature "ay"
            &[2, 0, 0, 0],       // two bytes, no padding before them
            &[3, 1],
        ]
        .concat();
        assert_eq!(e.buf, want);
    }

    #[test]
    fn signal_arguments_decode() {
        let mut e = Enc { buf: Vec::new() };
        e.u32(9);
        e.str("/org/freedesktop/systemd1/job/9");
        e.str("x.scope");
        e.str("done");
        let m = Msg {
            signature: "uoss".into(),
            body: e.buf,
            ..Default::default()
        };
        assert_eq!(
            m.args().unwrap(),
            vec!["9", "/org/freedesktop/systemd1/job/9", "x.scope", "done"]
        );
    }
}
