// audioplay.hpp: a header-only C++17 wrapper over the C API (audioplay.h).
//
//   ap::Config cfg;                       // defaults from ap_config_init
//   cfg.c.input_rate = 22050;
//   ap::Player player(cfg);               // throws ap::Error on failure
//   player.write(samples, frame_count);   // int16_t or float frames
//   player.drain(std::chrono::seconds(5));
//   for (const ap::Device &d : ap::list_devices()) ...   // output devices
//   player.set_device(id);                // move playback; set_device(nullptr): the default
//   ap::Position pos = player.position(); // frame being heard, frames queued, latency
//
// Every call either throws ap::Error (carrying the ApStatus and the library's reason: the
// ap_create_ex reason for the constructor, the player's last error message otherwise) or,
// in the overloads taking a std::error_code&, reports through it and never throws.
// ap::Player is move-only; destroying it destroys the player.
#ifndef AUDIOPLAY_HPP
#define AUDIOPLAY_HPP

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>
#if __cplusplus >= 202002L
#include <span>
#endif

#include "audioplay.h"

namespace ap {

/// std::error_code support for ApStatus values.
class StatusCategory : public std::error_category {
public:
    const char *name() const noexcept override { return "audioplay"; }
    std::string message(int code) const override { return ap_strerror(code); }
};

inline const std::error_category &status_category() {
    static const StatusCategory category;
    return category;
}

}  // namespace ap

/// Found by argument-dependent lookup (ApStatus is a global C enum), so that
/// `std::error_code ec = AP_ERR_TIMEOUT;` works.
inline std::error_code make_error_code(ApStatus s) { return {static_cast<int>(s), ap::status_category()}; }

namespace ap {

using ::make_error_code;

/// A failed call: the status and, when a player was involved, its last error message.
class Error : public std::runtime_error {
public:
    Error(ApStatus status, const std::string &what) : std::runtime_error(what), status_(status) {}
    ApStatus status() const noexcept { return status_; }
    std::error_code code() const { return make_error_code(status_); }

private:
    ApStatus status_;
};

/// Player settings; `c` is the C struct, filled with defaults.
struct Config {
    ApConfig c;
    Config() { ap_config_init(&c); }
};

/// An event delivered when the listener heard it.
using Event = ApEvent;

/// One output device as the system lists it.
struct Device {
    std::string id;    ///< pass to ApConfig.device_id (keep the string alive) or Player::set_device
    std::string name;  ///< for people
    std::uint32_t rate = 0;
    std::uint32_t channels = 0;
    bool is_default = false;  ///< the system default output
};

/// Where playback is (`ap_position`).
struct Position {
    std::uint64_t frames_heard = 0;   ///< the content frame the listener hears now (monotonic)
    std::uint64_t frames_queued = 0;  ///< content frames waiting in the queue
    double latency_ms = 0;            ///< the device's output latency
};

namespace detail {
/// ap_list_devices into a vector; `count` then `capacity` until the list holds still.
inline ApStatus list_devices(std::vector<Device> &out) {
    std::vector<ApDeviceInfo> infos;
    for (int attempt = 0;; attempt++) {
        std::size_t count = 0;
        ApStatus st = ap_list_devices(infos.empty() ? nullptr : infos.data(), infos.size(), &count);
        if (st != AP_OK) return st;
        if (count > infos.size() && attempt < 4) {  // first call, or a device appeared meanwhile
            infos.resize(count);
            continue;
        }
        if (count < infos.size()) infos.resize(count);
        out.clear();
        for (const ApDeviceInfo &d : infos)
            out.push_back(Device{d.id, d.name, d.rate, d.channels, d.is_default != 0});
        return AP_OK;
    }
}
}  // namespace detail

/// The system's output devices. Opens its own connection to the audio system. Throws
/// ap::Error (the library gives this call a status, no reason text).
inline std::vector<Device> list_devices() {
    std::vector<Device> out;
    ApStatus st = detail::list_devices(out);
    if (st != AP_OK) throw Error(st, std::string("ap_list_devices: ") + ap_strerror(st));
    return out;
}
inline std::vector<Device> list_devices(std::error_code &ec) {
    std::vector<Device> out;
    ec = make_error_code(detail::list_devices(out));
    return out;
}

class Player {
public:
    /// Throws ap::Error whose what() carries the library's reason, which names the field
    /// ("ap_create: invalid argument (input_rate 5 out of range 1000..=384000)").
    explicit Player(const Config &cfg) {
        char reason[512] = "";
        ApStatus st = ap_create_ex(&cfg.c, &p_, reason, sizeof reason);
        if (st != AP_OK)
            throw Error(st, std::string("ap_create: ") + ap_strerror(st) + (reason[0] ? std::string(" (") + reason + ")" : ""));
    }
    Player(const Config &cfg, std::error_code &ec) noexcept {
        ec = make_error_code(ap_create_ex(&cfg.c, &p_, nullptr, 0));
    }
    ~Player() { ap_destroy(p_); }
    Player(const Player &) = delete;
    Player &operator=(const Player &) = delete;
    Player(Player &&o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    Player &operator=(Player &&o) noexcept {
        if (this != &o) {
            ap_destroy(p_);
            p_ = std::exchange(o.p_, nullptr);
        }
        return *this;
    }

    /// The C handle, for calls this wrapper does not cover.
    ApPlayer *handle() const noexcept { return p_; }

    /// Queues interleaved frames; returns how many were queued (fewer on timeout).
    template <typename Sample>
    std::size_t write(const Sample *frames, std::size_t frame_count) {
        std::size_t n = 0;
        check(ap_write(p_, frames, frame_count, &n), "ap_write");
        return n;
    }
    template <typename Sample>
    std::size_t write(const Sample *frames, std::size_t frame_count, std::error_code &ec) noexcept {
        std::size_t n = 0;
        ec = make_error_code(ap_write(p_, frames, frame_count, &n));
        return n;
    }
    /// Queues a whole vector of interleaved samples (`channels` per frame).
    template <typename Sample>
    std::size_t write(const std::vector<Sample> &samples, std::size_t channels = 1) {
        return write(samples.data(), samples.size() / channels);
    }
#if __cplusplus >= 202002L
    template <typename Sample>
    std::size_t write(std::span<const Sample> samples, std::size_t channels = 1) {
        return write(samples.data(), samples.size() / channels);
    }
#endif

    void end_utterance() { check(ap_end_utterance(p_), "ap_end_utterance"); }
    void mark(std::uint64_t id) { check(ap_mark(p_, id), "ap_mark"); }

    /// Waits until everything written has been heard; false if `timeout` passed first.
    bool drain(std::chrono::milliseconds timeout) {
        ApStatus st = ap_drain(p_, static_cast<std::uint32_t>(timeout.count()));
        if (st == AP_ERR_TIMEOUT) return false;
        check(st, "ap_drain");
        return true;
    }

    /// Barge-in; returns the content frame being heard when it was asked for.
    std::uint64_t flush(std::chrono::milliseconds fade) {
        std::uint64_t heard = 0;
        check(ap_flush(p_, static_cast<std::uint32_t>(fade.count()), &heard), "ap_flush");
        return heard;
    }

    void pause(std::chrono::milliseconds ramp) { check(ap_pause(p_, static_cast<std::uint32_t>(ramp.count())), "ap_pause"); }
    void resume(std::chrono::milliseconds ramp) { check(ap_resume(p_, static_cast<std::uint32_t>(ramp.count())), "ap_resume"); }
    void set_volume(float gain, std::chrono::milliseconds ramp) {
        check(ap_set_volume(p_, gain, static_cast<std::uint32_t>(ramp.count())), "ap_set_volume");
    }
    /// Speed without pitch change (0.5..4; 1 = as written), from the next frame written.
    void set_speed(float speed) { check(ap_set_speed(p_, speed), "ap_set_speed"); }
    void set_input_format(ApFormat format, std::uint32_t channels, std::uint32_t rate) {
        check(ap_set_input_format(p_, format, channels, rate), "ap_set_input_format");
    }

    ApMetrics metrics() const {
        ApMetrics m{};
        m.struct_size = sizeof m;
        check(ap_metrics(p_, &m), "ap_metrics");
        return m;
    }

    /// Moves playback to device `id` (as list_devices reports it) without losing anything
    /// queued; AP_EVENT_DEVICE_CHANGED fires when it is done. Throws ap::Error with
    /// AP_ERR_NO_DEVICE if it is not present.
    void set_device(const std::string &id) {
        if (id.find('\0') != std::string::npos)
            throw Error(AP_ERR_INVALID_ARG, "ap_set_device: invalid argument (device id contains a NUL byte)");
        check(ap_set_device(p_, id.c_str()), "ap_set_device");
    }
    /// nullptr follows the system default output again.
    void set_device(const char *id) { check(ap_set_device(p_, id), "ap_set_device"); }
    void set_device(const std::string &id, std::error_code &ec) noexcept {
        ec = id.find('\0') != std::string::npos ? make_error_code(AP_ERR_INVALID_ARG)
                                                 : make_error_code(ap_set_device(p_, id.c_str()));
    }

    /// Where playback is, from atomics only (cheap enough to poll).
    Position position() const {
        Position pos;
        check(ap_position(p_, &pos.frames_heard, &pos.frames_queued, &pos.latency_ms), "ap_position");
        return pos;
    }
    Position position(std::error_code &ec) const noexcept {
        Position pos;
        ec = make_error_code(ap_position(p_, &pos.frames_heard, &pos.frames_queued, &pos.latency_ms));
        return pos;
    }

    /// The current stream, read without locks (`ap_snapshot_state`).
    ApStreamState state() const {
        ApStreamState s{};
        s.struct_size = sizeof s;
        check(ap_snapshot_state(p_, &s), "ap_snapshot_state");
        return s;
    }

    /// The next heard event, if any.
    std::optional<Event> poll_event() {
        Event e{};
        e.struct_size = sizeof e;
        std::size_t n = 0;
        check(ap_poll_event(p_, &e, &n), "ap_poll_event");
        if (n == 0) return std::nullopt;
        return e;
    }

private:
    void check(ApStatus st, const char *call) const {
        if (st == AP_OK) return;
        char detail[256] = "";
        ap_last_error(p_, detail, sizeof detail);
        throw Error(st, std::string(call) + ": " + ap_strerror(st) + (detail[0] ? std::string(" (") + detail + ")" : ""));
    }

    ApPlayer *p_ = nullptr;
};

}  // namespace ap

namespace std {
template <>
struct is_error_code_enum<ApStatus> : true_type {};
}  // namespace std

#endif
