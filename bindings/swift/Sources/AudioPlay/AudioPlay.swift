import CAudioPlay

/// A failed call: `status` is the ApStatus code.
public struct AudioPlayError: Error, CustomStringConvertible {
    public let status: Int32
    public let description: String
}

/// Something the listener heard.
public struct AudioPlayEvent {
    public let kind: UInt32
    public let id: UInt64
    public let frame: UInt64
    public let heardMs: Double
}

/// A playback queue on an output device. Deinitialising it destroys the player.
public final class Player {
    private let handle: OpaquePointer

    public init(rate: UInt32 = 22050, channels: UInt32 = 1, float32: Bool = false) throws {
        var cfg = ApConfig()
        ap_config_init(&cfg)
        cfg.input_rate = rate
        cfg.input_channels = channels
        cfg.input_format = float32 ? AP_FORMAT_F32 : AP_FORMAT_S16
        var out: OpaquePointer?
        let st = ap_create(&cfg, &out)
        guard st == AP_OK, let h = out else {
            throw AudioPlayError(status: st.rawValue, description: String(cString: ap_strerror(st.rawValue)))
        }
        handle = h
    }

    deinit { ap_destroy(handle) }

    private func check(_ st: ApStatus) throws {
        guard st != AP_OK else { return }
        var buf = [CChar](repeating: 0, count: 256)
        ap_last_error(handle, &buf, buf.count)
        throw AudioPlayError(status: st.rawValue, description: String(cString: buf))
    }

    /// Queues interleaved int16 frames; returns how many were queued.
    @discardableResult
    public func write(_ samples: [Int16], channels: Int = 1) throws -> Int {
        var written = 0
        try samples.withUnsafeBytes { raw in
            try check(ap_write(handle, raw.baseAddress, samples.count / channels, &written))
        }
        return written
    }

    /// Waits until everything written has been heard; false if the timeout passed.
    public func drain(timeoutMs: UInt32 = 60_000) throws -> Bool {
        let st = ap_drain(handle, timeoutMs)
        if st == AP_ERR_TIMEOUT { return false }
        try check(st)
        return true
    }

    public func mark(_ id: UInt64) throws { try check(ap_mark(handle, id)) }
    public func endUtterance() throws { try check(ap_end_utterance(handle)) }

    /// Barge-in; returns the content frame being heard when it was asked for.
    @discardableResult
    public func flush(fadeMs: UInt32 = 10) throws -> UInt64 {
        var heard: UInt64 = 0
        try check(ap_flush(handle, fadeMs, &heard))
        return heard
    }

    public func metrics() throws -> ApMetrics {
        var m = ApMetrics()
        m.struct_size = UInt32(MemoryLayout<ApMetrics>.size)
        try check(ap_metrics(handle, &m))
        return m
    }

    public func pollEvent() throws -> AudioPlayEvent? {
        var e = ApEvent()
        e.struct_size = UInt32(MemoryLayout<ApEvent>.size)
        var n = 0
        try check(ap_poll_event(handle, &e, &n))
        return n == 0 ? nil : AudioPlayEvent(kind: e.kind, id: e.id, frame: e.frame, heardMs: e.heard_ms)
    }
}
