package audioplay

/*
#include <audioplay.h>
*/
import "C"

import (
	"time"
	"unsafe"
)

// Metrics is a snapshot of the player's counters (ApMetrics). Frame accounting:
// FramesWritten = FramesPlayed + FramesQueued + FramesFlushed + FramesDropped.
type Metrics struct {
	FramesWritten, FramesPlayed, FramesQueued, FramesFlushed, FramesDropped uint64
	FramesHeard                                                             uint64 // the content frame the listener hears now
	FramesReplayed                                                          uint64 // replayed on a new device after the old one vanished

	Underruns, LateCallbacks, ServerUnderflows uint64
	Callbacks, StreamErrors, CallbackErrors    uint64
	GenerationMismatches, ShapeMismatches      uint64
	ResampleErrors                             uint64
	MarkersFlushed, EventsDropped              uint64
	FlushesRewritten                           uint64 // flushes faded inside what the server held (PulseAudio)
	ServerMoves                                uint64 // route changes the server made that the stream kept (no recreate)

	StreamGeneration, Recreates, RecreateFailures, RecreatesRefused uint64
	DeviceQueryFailures, Outages, ServerReconnects                  uint64
	LastRecreateReason                                              int // AP_REASON_*
	Recreating, Suspended, OutputLost, NeedsResample                bool
	ResampleFallback                                                bool

	StreamRate, DeviceRate, ContentRate, OutputChannels int
	DeviceFormat                                        int // AP_DEVICE_FORMAT_*
	DeviceID, DeviceName                                string

	CallbackP50Us, CallbackP95Us, CallbackP99Us, CallbackMaxUs float64
	ResampleP50Us, ResampleP95Us, ResampleP99Us, ResampleMaxUs float64
	OutputLatency                                              time.Duration
	LastRouteGap                                               time.Duration // -1 until measured
	RecreateP50, RecreateP95, RecreateMax                      time.Duration
	LastWake                                                   time.Duration // -1 if none yet
	LastOutage                                                 time.Duration
	Trimmed                                                    time.Duration // leading silence dropped at utterance starts (Config.TrimThreshold)
}

// Metrics reads the player's counters.
func (p *Player) Metrics() (Metrics, error) {
	var m C.ApMetrics
	m.struct_size = C.uint32_t(unsafe.Sizeof(m))
	if err := p.call("metrics", func(h *C.ApPlayer) C.ApStatus { return C.ap_metrics(h, &m) }); err != nil {
		return Metrics{}, err
	}
	return Metrics{
		FramesWritten: uint64(m.frames_written), FramesPlayed: uint64(m.frames_played),
		FramesQueued: uint64(m.frames_queued), FramesFlushed: uint64(m.frames_flushed),
		FramesDropped: uint64(m.frames_dropped), FramesHeard: uint64(m.frames_heard),
		FramesReplayed: uint64(m.frames_replayed),

		Underruns: uint64(m.underruns), LateCallbacks: uint64(m.late_callbacks),
		ServerUnderflows: uint64(m.server_underflows), Callbacks: uint64(m.callbacks),
		StreamErrors: uint64(m.stream_errors), CallbackErrors: uint64(m.callback_errors),
		GenerationMismatches: uint64(m.generation_mismatches),
		ShapeMismatches:      uint64(m.shape_mismatches), ResampleErrors: uint64(m.resample_errors),
		MarkersFlushed: uint64(m.markers_flushed), EventsDropped: uint64(m.events_dropped),
		FlushesRewritten: uint64(m.flushes_rewritten), ServerMoves: uint64(m.server_moves),

		StreamGeneration: uint64(m.stream_generation), Recreates: uint64(m.recreates),
		RecreateFailures: uint64(m.recreate_failures), RecreatesRefused: uint64(m.recreates_refused),
		DeviceQueryFailures: uint64(m.device_query_failures), Outages: uint64(m.outages),
		ServerReconnects: uint64(m.server_reconnects), LastRecreateReason: int(m.last_recreate_reason),
		Recreating: m.recreating != 0, Suspended: m.suspended != 0, OutputLost: m.output_lost != 0,
		NeedsResample: m.needs_resample != 0, ResampleFallback: m.resample_fallback != 0,

		StreamRate: int(m.stream_rate), DeviceRate: int(m.device_rate),
		ContentRate: int(m.content_rate), OutputChannels: int(m.output_channels),
		DeviceFormat: int(m.device_format),
		DeviceID:     C.GoString(&m.device_id[0]), DeviceName: C.GoString(&m.device_name[0]),

		CallbackP50Us: float64(m.callback_us_p50), CallbackP95Us: float64(m.callback_us_p95),
		CallbackP99Us: float64(m.callback_us_p99), CallbackMaxUs: float64(m.callback_us_max),
		ResampleP50Us: float64(m.resample_us_p50), ResampleP95Us: float64(m.resample_us_p95),
		ResampleP99Us: float64(m.resample_us_p99), ResampleMaxUs: float64(m.resample_us_max),
		OutputLatency: msDuration(float64(m.output_latency_ms)),
		LastRouteGap:  msDuration(float64(m.last_route_gap_ms)),
		RecreateP50:   msDuration(float64(m.recreate_ms_p50)), RecreateP95: msDuration(float64(m.recreate_ms_p95)),
		RecreateMax: msDuration(float64(m.recreate_ms_max)),
		LastWake:    msDuration(float64(m.last_wake_ms)),
		LastOutage:  time.Duration(m.last_outage_ms) * time.Millisecond,
		Trimmed:     msDuration(float64(m.trimmed_ms)),
	}, nil
}

// StreamState is the current device stream (ApStreamState), read without locks.
type StreamState struct {
	Started, Recreating                                 bool
	Generation                                          uint64
	StreamRate, DeviceRate, ContentRate, OutputChannels int
	DeviceFormat                                        int // AP_DEVICE_FORMAT_*
	DeviceID, DeviceName                                string
}

// State reads the current stream's state; ContentRate follows voice changes as they play.
func (p *Player) State() (StreamState, error) {
	var s C.ApStreamState
	s.struct_size = C.uint32_t(unsafe.Sizeof(s))
	if err := p.call("snapshot_state", func(h *C.ApPlayer) C.ApStatus { return C.ap_snapshot_state(h, &s) }); err != nil {
		return StreamState{}, err
	}
	return StreamState{
		Started: s.started != 0, Recreating: s.recreating != 0, Generation: uint64(s.generation),
		StreamRate: int(s.stream_rate), DeviceRate: int(s.device_rate), ContentRate: int(s.content_rate),
		OutputChannels: int(s.output_channels), DeviceFormat: int(s.device_format),
		DeviceID: C.GoString(&s.device_id[0]), DeviceName: C.GoString(&s.device_name[0]),
	}, nil
}
