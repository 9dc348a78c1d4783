//! A TCP proxy between one loader function and the database, which holds
//! the next `COMMIT` the loader sends while the rehearsal strikes.
//!
//! Waiting for the commit itself, rather than polling the server for an
//! open transaction, strikes every time however short the transaction: on
//! a quiet machine a loader's transaction lasts a few milliseconds and a
//! poll mostly misses it. At the held commit the batch is written and not
//! committed, the moment a crash hurts most.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// The MySQL protocol's `COM_QUERY` command byte.
const COM_QUERY: u8 = 0x03;

/// A proxy on a loopback port, forwarding every connection to the database
/// until the accepting task is dropped with the runtime.
pub struct CommitTrap {
    port: u16,
    armed: Arc<Mutex<Option<oneshot::Sender<HeldCommit>>>>,
}

/// A commit held by the trap: the server thread of its connection, and what
/// to do with it once the fault is done.
#[derive(Debug)]
pub struct HeldCommit {
    pub server_thread: u32,
    release: oneshot::Sender<Release>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// Send the commit on to the server (whatever happened to it meanwhile).
    Forward,
    /// Close both sides without sending it: the server rolls back.
    Drop,
}

impl HeldCommit {
    pub fn release(self, release: Release) {
        let _ = self.release.send(release);
    }
}

impl CommitTrap {
    /// Starts a trap forwarding to the database at `upstream` (host, port).
    pub async fn start(upstream: (String, u16)) -> anyhow::Result<CommitTrap> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot listen on a loopback port for the chaos proxy")?;
        let port = listener.local_addr()?.port();
        let armed: Arc<Mutex<Option<oneshot::Sender<HeldCommit>>>> = Arc::default();
        let trap_armed = armed.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let armed = trap_armed.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    match TcpStream::connect((upstream.0.as_str(), upstream.1)).await {
                        Ok(server) => relay(client, server, armed).await,
                        Err(error) => {
                            tracing::warn!(%error, "chaos proxy: cannot reach the database")
                        }
                    }
                });
            }
        });
        Ok(CommitTrap { port, armed })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `database_url` with its host and port replaced by the trap's, over
    /// TCP (a client preferring the server's socket would bypass the trap).
    pub fn url_for(&self, database_url: &str) -> anyhow::Result<String> {
        let mut url = url::Url::parse(database_url).context("DATABASE_URL is not a URL")?;
        url.set_host(Some("127.0.0.1"))
            .context("DATABASE_URL has no host to replace")?;
        url.set_port(Some(self.port))
            .map_err(|()| anyhow::anyhow!("DATABASE_URL cannot take a port"))?;
        url.query_pairs_mut().append_pair("prefer_socket", "false");
        Ok(url.to_string())
    }

    /// The next commit any connection sends through the trap, held until
    /// released. Arming again replaces the previous arming.
    pub fn arm(&self) -> oneshot::Receiver<HeldCommit> {
        let (sender, receiver) = oneshot::channel();
        *self.armed.lock().expect("trap") = Some(sender);
        receiver
    }

    pub fn disarm(&self) {
        self.armed.lock().expect("trap").take();
    }
}

/// Relays one connection both ways until either side closes, or a held
/// commit is dropped.
async fn relay(
    client: TcpStream,
    server: TcpStream,
    armed: Arc<Mutex<Option<oneshot::Sender<HeldCommit>>>>,
) {
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let server_thread = Arc::new(AtomicU32::new(0));
    tokio::select! {
        _ = from_server(server_read, client_write, server_thread.clone()) => {}
        _ = from_client(client_read, server_write, server_thread, armed) => {}
    }
}

/// Copies the server's bytes to the client, noting the connection's server
/// thread from the handshake (its first packet).
async fn from_server(
    mut server: OwnedReadHalf,
    mut client: OwnedWriteHalf,
    server_thread: Arc<AtomicU32>,
) -> std::io::Result<()> {
    let packet = read_packet(&mut server).await?;
    if let Some(thread) = handshake_thread(&packet[4..]) {
        server_thread.store(thread, Ordering::SeqCst);
    }
    client.write_all(&packet).await?;
    tokio::io::copy(&mut server, &mut client).await?;
    Ok(())
}

/// Copies the client's packets to the server, holding a `COMMIT` while the
/// trap is armed.
async fn from_client(
    mut client: OwnedReadHalf,
    mut server: OwnedWriteHalf,
    server_thread: Arc<AtomicU32>,
    armed: Arc<Mutex<Option<oneshot::Sender<HeldCommit>>>>,
) -> std::io::Result<()> {
    loop {
        let packet = read_packet(&mut client).await?;
        if is_commit(&packet[4..]) {
            let waiting = armed.lock().expect("trap").take();
            if let Some(waiting) = waiting {
                let (release, released) = oneshot::channel();
                let held = HeldCommit {
                    server_thread: server_thread.load(Ordering::SeqCst),
                    release,
                };
                // A receiver gone (disarmed meanwhile) lets it through.
                if waiting.send(held).is_ok() {
                    match released.await {
                        Ok(Release::Forward) => {}
                        Ok(Release::Drop) | Err(_) => return Ok(()),
                    }
                }
            }
        }
        server.write_all(&packet).await?;
    }
}

/// One MySQL packet, header (3-byte length, sequence number) included.
async fn read_packet(from: &mut OwnedReadHalf) -> std::io::Result<Vec<u8>> {
    let mut header = [0u8; 4];
    from.read_exact(&mut header).await?;
    let length = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
    let mut packet = Vec::with_capacity(4 + length);
    packet.extend_from_slice(&header);
    packet.resize(4 + length, 0);
    from.read_exact(&mut packet[4..]).await?;
    Ok(packet)
}

/// A `COM_QUERY` of `COMMIT` (what the client library sends to commit).
fn is_commit(payload: &[u8]) -> bool {
    match payload.split_first() {
        Some((&COM_QUERY, query)) => query.trim_ascii().eq_ignore_ascii_case(b"COMMIT"),
        _ => false,
    }
}

/// The connection id in a protocol-10 handshake: after the version byte and
/// the NUL-terminated server version.
fn handshake_thread(payload: &[u8]) -> Option<u32> {
    let (&10, rest) = payload.split_first()? else {
        return None;
    };
    let end = rest.iter().position(|&b| b == 0)?;
    let id = rest.get(end + 1..end + 5)?;
    Some(u32::from_le_bytes(id.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(sequence: u8, payload: &[u8]) -> Vec<u8> {
        let length = (payload.len() as u32).to_le_bytes();
        let mut packet = vec![length[0], length[1], length[2], sequence];
        packet.extend_from_slice(payload);
        packet
    }

    /// A stand-in server: a handshake naming thread 4242, then every byte
    /// it receives, reported on the channel.
    async fn fake_server() -> ((String, u16), tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (sender, received) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut handshake = vec![10];
            handshake.extend_from_slice(b"10.11.0-MariaDB\0");
            handshake.extend_from_slice(&4242u32.to_le_bytes());
            handshake.extend_from_slice(&[0; 8]);
            socket.write_all(&packet(0, &handshake)).await.unwrap();
            let mut buffer = [0u8; 256];
            loop {
                match socket.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => sender.send(buffer[..n].to_vec()).unwrap(),
                }
            }
        });
        (("127.0.0.1".to_string(), port), received)
    }

    #[tokio::test]
    async fn an_armed_trap_holds_the_commit_until_released_and_passes_the_rest() {
        let (upstream, mut received) = fake_server().await;
        let trap = CommitTrap::start(upstream).await.unwrap();
        let mut client = TcpStream::connect(("127.0.0.1", trap.port()))
            .await
            .unwrap();
        let mut handshake = [0u8; 4 + 1 + 16 + 4 + 8];
        client.read_exact(&mut handshake).await.unwrap();

        let held = trap.arm();
        let insert = packet(0, b"\x03INSERT INTO t VALUES (1)");
        let commit = packet(0, b"\x03COMMIT");
        client.write_all(&insert).await.unwrap();
        assert_eq!(received.recv().await.unwrap(), insert);
        client.write_all(&commit).await.unwrap();
        let held = held.await.unwrap();
        assert_eq!(held.server_thread, 4242);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(received.try_recv().is_err(), "the commit went through");
        held.release(Release::Forward);
        assert_eq!(received.recv().await.unwrap(), commit);

        // Disarmed, a commit passes; a dropped one closes the connection.
        client.write_all(&commit).await.unwrap();
        assert_eq!(received.recv().await.unwrap(), commit);
        let held = trap.arm();
        client.write_all(&commit).await.unwrap();
        held.await.unwrap().release(Release::Drop);
        assert_eq!(received.recv().await, None, "the server side stays open");
        let mut rest = Vec::new();
        assert_eq!(client.read_to_end(&mut rest).await.unwrap(), 0);
    }

    #[test]
    fn only_a_commit_query_is_a_commit() {
        assert!(is_commit(b"\x03COMMIT"));
        assert!(is_commit(b"\x03 commit "));
        assert!(!is_commit(b"\x03COMMIT; DROP TABLE t"));
        assert!(!is_commit(b"\x16COMMIT"));
        assert!(!is_commit(b""));
    }

    #[tokio::test]
    async fn the_url_points_at_the_trap_over_tcp() {
        let (upstream, _received) = fake_server().await;
        let trap = CommitTrap::start(upstream).await.unwrap();
        let url = trap
            .url_for("mysql://loader:p%40ss@db.example:3306/wh?pool_min=1")
            .unwrap();
        assert_eq!(
            url,
            format!(
                "mysql://loader:p%40ss@127.0.0.1:{}/wh?pool_min=1&prefer_socket=false",
                trap.port()
            )
        );
    }
}
