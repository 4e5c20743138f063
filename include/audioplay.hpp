// audioplay.hpp: a header-only C++17 wrapper over the C API (audioplay.h).
//
//   ap::Config cfg;                       // defaults from ap_config_init
//   cfg.c.input_rate = 22050;
//   ap::Player player(cfg);               // throws ap::Error on failure
//   player.write(samples, frame_count);   // int16_t or float frames
//   player.drain(std::chrono::seconds(5));
//
// Every call either throws ap::Error (carrying the ApStatus and the player's last error
// message) or, in the overloads taking a std::error_code&, reports through it and never
// throws. ap::Player is move-only; destroying it destroys the player.
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

class Player {
public:
    explicit Player(const Config &cfg) {
        ApStatus st = ap_create(&cfg.c, &p_);
        if (st != AP_OK) throw Error(st, std::string("ap_create: ") + ap_strerror(st));
    }
    Player(const Config &cfg, std::error_code &ec) noexcept {
        ec = make_error_code(ap_create(&cfg.c, &p_));
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
    void set_input_format(ApFormat format, std::uint32_t channels, std::uint32_t rate) {
        check(ap_set_input_format(p_, format, channels, rate), "ap_set_input_format");
    }

    ApMetrics metrics() const {
        ApMetrics m{};
        m.struct_size = sizeof m;
        check(ap_metrics(p_, &m), "ap_metrics");
        return m;
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
