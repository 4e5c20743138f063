use std::ffi::CString;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time;

use futures::channel::oneshot;
use futures::FutureExt as _;

use super::reactor::ReactorHandle;
use super::{ClientError, PlaybackSource, Result as ClientResult};
use crate::protocol;

/// A stream of audio data sent from the client to the server for playback in
/// a sink.
///
/// The stream handle can be freely cloned and shared between threads.
#[derive(Clone)]
pub struct PlaybackStream(Arc<InnerPlaybackStream>);

struct InnerPlaybackStream {
    handle: ReactorHandle,
    info: protocol::CreatePlaybackStreamReply,
    eof_notify: futures::future::Shared<oneshot::Receiver<()>>,
    // audioplay patch: counted by the reactor (see `underflows`).
    underflows: Arc<AtomicU64>,
    // audioplay patch: a rewrite is asked for (see `request_rewrite`).
    rewrite: Arc<AtomicBool>,
    // audioplay patch: where the server moved the stream (see `route`).
    route: Arc<StreamRoute>,
}

impl std::fmt::Debug for PlaybackStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PlaybackStream")
            .field(&self.0.info.channel)
            .finish()
    }
}

impl PlaybackStream {
    pub(super) async fn new(
        handle: ReactorHandle,
        params: protocol::PlaybackStreamParams,
        source: impl PlaybackSource,
    ) -> Result<Self, ClientError> {
        let (eof_tx, eof_rx) = oneshot::channel();
        let underflows = Arc::new(AtomicU64::new(0));
        let rewrite = Arc::new(AtomicBool::new(false));
        let route = Arc::new(StreamRoute::default());
        let info = handle
            .insert_playback_stream(
                params,
                source,
                Some(eof_tx),
                underflows.clone(),
                rewrite.clone(),
                route.clone(),
            )
            .await?;

        Ok(Self(Arc::new(InnerPlaybackStream {
            handle,
            info,
            eof_notify: eof_rx.shared(),
            underflows,
            rewrite,
            route,
        })))
    }

    /// audioplay patch: where the server has moved this stream since its creation, as it
    /// does to streams on the default sink when the default changes (see [`StreamRoute`]).
    pub fn route(&self) -> Arc<StreamRoute> {
        self.0.route.clone()
    }

    /// audioplay patch: a handle that asks the client's thread to call the source's
    /// [`PlaybackSource::rewrite`] (see [`RewriteRequester`]).
    pub fn rewrite_requester(&self) -> RewriteRequester {
        RewriteRequester {
            flag: self.0.rewrite.clone(),
            waker: self.0.handle.weak_waker(),
        }
    }

    /// audioplay patch: how many times the server has reported an underflow for this stream
    /// (it ran out of data while playing and played silence instead).
    pub fn underflows(&self) -> u64 {
        self.0.underflows.load(Ordering::Relaxed)
    }

    /// The ID of the stream.
    pub fn channel(&self) -> u32 {
        self.0.info.channel
    }

    /// The attributes of the server-side buffer.
    pub fn buffer_attr(&self) -> &protocol::stream::BufferAttr {
        &self.0.info.buffer_attr
    }

    /// The sample specification for the stream. Can differ from the client's
    /// requested sample spec.
    pub fn sample_spec(&self) -> &protocol::SampleSpec {
        &self.0.info.sample_spec
    }

    /// The channel map for the stream.
    pub fn channel_map(&self) -> &protocol::ChannelMap {
        &self.0.info.channel_map
    }

    /// The sink the stream is connected to.
    pub fn sink(&self) -> u32 {
        self.0.info.sink_index
    }

    /// Sets the name of the playback stream.
    pub async fn set_name(&self, name: CString) -> ClientResult<()> {
        self.0
            .handle
            .roundtrip_ack(protocol::Command::SetPlaybackStreamName(
                protocol::SetStreamNameParams {
                    index: self.0.info.stream_index,
                    name,
                },
            ))
            .await
    }

    /// Fetches playback timing information for the playback stream.
    pub async fn timing_info(&self) -> ClientResult<protocol::PlaybackLatency> {
        self.0
            .handle
            .roundtrip_reply(protocol::Command::GetPlaybackLatency(
                protocol::LatencyParams {
                    channel: self.0.info.channel,
                    now: time::SystemTime::now(),
                },
            ))
            .await
    }

    /// Corks the playback stream (temporarily pausing playback).
    pub async fn cork(&self) -> ClientResult<()> {
        self.0
            .handle
            .roundtrip_ack(protocol::Command::CorkPlaybackStream(
                protocol::CorkStreamParams {
                    channel: self.0.info.channel,
                    cork: true,
                },
            ))
            .await
    }

    /// Uncorks the playback stream.
    pub async fn uncork(&self) -> ClientResult<()> {
        self.0
            .handle
            .roundtrip_ack(protocol::Command::CorkPlaybackStream(
                protocol::CorkStreamParams {
                    channel: self.0.info.channel,
                    cork: false,
                },
            ))
            .await
    }

    /// Returns a future that resolves when the stream's [AudioSource] has reached the end.
    pub async fn source_eof(&self) -> ClientResult<()> {
        self.0
            .eof_notify
            .clone()
            .await
            .map_err(|_| ClientError::Disconnected)
    }

    /// Waits until the given [AudioSource] has reached the end (and returns 0 in [AudioSource::poll_read]),
    /// and then instructs the server to drain the buffer before ending the stream.
    pub async fn play_all(&self) -> ClientResult<()> {
        self.source_eof().await?;
        self.drain().await?;
        Ok(())
    }

    /// Instructs the server to play any remaining data in the buffer, then end
    /// the stream. This method returns once the stream has finished.
    pub async fn drain(&self) -> ClientResult<()> {
        self.0
            .handle
            .mark_playback_stream_draining(self.0.info.channel);
        self.0
            .handle
            .roundtrip_ack(protocol::Command::DrainPlaybackStream(self.0.info.channel))
            .await
    }

    /// Instructs the server to discard any buffered data.
    pub async fn flush(&self) -> super::Result<()> {
        self.0
            .handle
            .roundtrip_ack(protocol::Command::FlushPlaybackStream(self.0.info.channel))
            .await
    }

    /// Deletes the stream from the server.
    pub async fn delete(self) -> ClientResult<()> {
        self.0
            .handle
            .delete_playback_stream(self.0.info.channel)
            .await
    }
}

impl Drop for InnerPlaybackStream {
    fn drop(&mut self) {
        // Sends the delete command to the server, but doesn't wait for the
        // response.
        let _ = self
            .handle
            .delete_playback_stream(self.info.channel)
            .now_or_never();
    }
}

/// audioplay patch: asks the client's thread to call a playback source's
/// [`PlaybackSource::rewrite`] as soon as it can (before its next write for the stream) and
/// to send what it returns over the end of what the server holds (a write seeking back by its
/// own length: the server's write index ends where it was, and the server rewinds its sink if
/// it had already mixed those bytes). [`request`](Self::request) never blocks: a flag and a
/// wake of the client's thread. The handle does not keep the client alive: once every client
/// handle is gone, a request does nothing.
#[derive(Clone)]
pub struct RewriteRequester {
    flag: Arc<AtomicBool>,
    waker: super::reactor::WeakWaker,
}

impl std::fmt::Debug for RewriteRequester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RewriteRequester").finish_non_exhaustive()
    }
}

impl RewriteRequester {
    #[allow(missing_docs)]
    pub fn request(&self) {
        self.flag.store(true, Ordering::Release);
        self.waker.wake();
    }
}

/// audioplay patch: the sink the server last moved a playback stream to (its
/// PLAYBACK_STREAM_MOVED notifications, which upstream ignored). PulseAudio moves the streams
/// on the default sink when the default changes, without a gap; an owner that knows it can
/// keep the stream instead of recreating it. Written by the client's thread on a move (rare:
/// one uncontended lock), read by the owner.
#[derive(Debug, Default)]
pub struct StreamRoute {
    sink: std::sync::Mutex<Option<CString>>,
}

impl StreamRoute {
    /// The name of the sink the server moved the stream to last; None if it never moved it.
    pub fn moved_to(&self) -> Option<CString> {
        self.sink.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(super) fn moved(&self, sink: &CString) {
        *self.sink.lock().unwrap_or_else(|e| e.into_inner()) = Some(sink.clone());
    }
}
