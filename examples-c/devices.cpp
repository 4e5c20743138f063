// devices.cpp: output devices and position through the C++ wrapper (audioplay.hpp), C++17.
// Lists the devices, plays a tone on the default while watching the position advance, moves
// it to another device (set_device), back to the default (set_device(nullptr)), and checks
// that every frame was heard. Errors carry the library's reason.
//
//   devices_cpp [--require-devices N]     (fails if fewer than N devices are listed)
#include <audioplay.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

int fail(const char *what) {
    std::fprintf(stderr, "devices_cpp: %s\n", what);
    return 1;
}

std::vector<std::int16_t> tone(double freq, std::uint32_t rate, std::size_t frames) {
    std::vector<std::int16_t> s(frames);
    for (std::size_t i = 0; i < frames; i++)
        s[i] = static_cast<std::int16_t>(10000.0 * std::sin(2.0 * M_PI * freq * static_cast<double>(i) / rate));
    return s;
}

// Polls until an event of `kind` arrives (true) or `ms` pass (false).
bool wait_event(ap::Player &p, std::uint32_t kind, int ms) {
    for (int i = 0; i < ms / 5; i++) {
        while (auto e = p.poll_event())
            if (e->kind == kind) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
}

bool contains(const char *haystack, const char *needle) { return std::strstr(haystack, needle) != nullptr; }

}  // namespace

int main(int argc, char **argv) {
    std::size_t required = 1;
    for (int i = 1; i < argc; i++) {
        if (std::strcmp(argv[i], "--require-devices") == 0 && i + 1 < argc) {
            required = static_cast<std::size_t>(std::strtoul(argv[++i], nullptr, 10));
        } else {
            std::fprintf(stderr, "usage: devices_cpp [--require-devices N]\n");
            return 2;
        }
    }

    // The constructor's exception carries ap_create_ex's reason, naming the field.
    try {
        ap::Config bad;
        bad.c.input_rate = 5;
        ap::Player p(bad);
        return fail("input_rate 5 was accepted");
    } catch (const ap::Error &e) {
        if (e.status() != AP_ERR_INVALID_ARG || !contains(e.what(), "input_rate")) return fail(e.what());
        std::printf("bad config: %s\n", e.what());
    }

    std::vector<ap::Device> devices = ap::list_devices();
    const ap::Device *def = nullptr, *other = nullptr;
    for (const ap::Device &d : devices) {
        std::printf("device %s%s: %s, %u Hz, %u channels\n", d.id.c_str(), d.is_default ? " (default)" : "",
                    d.name.c_str(), d.rate, d.channels);
        if (d.id.empty() || d.rate == 0 || d.channels == 0) return fail("a device without id, rate or channels");
        if (d.is_default) {
            if (def) return fail("two default devices");
            def = &d;
        } else if (!other) {
            other = &d;
        }
    }
    if (devices.size() < required) return fail("fewer devices than --require-devices");
    if (!def) return fail("no default device");

    const std::uint32_t rate = 22050;
    ap::Config cfg;
    cfg.c.input_rate = rate;
    ap::Player player(cfg);
    const std::vector<std::int16_t> second = tone(440.0, rate, rate);
    std::uint64_t written = player.write(second);

    // The position advances in real time while it plays, and the queue shrinks.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    ap::Position a = player.position();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ap::Position b = player.position();
    std::printf("position: heard %llu then %llu, queued %llu then %llu, latency %.1f ms\n",
                static_cast<unsigned long long>(a.frames_heard), static_cast<unsigned long long>(b.frames_heard),
                static_cast<unsigned long long>(a.frames_queued), static_cast<unsigned long long>(b.frames_queued),
                b.latency_ms);
    std::uint64_t advanced = b.frames_heard - a.frames_heard;
    if (advanced < rate * 2 / 10 || advanced > rate * 4 / 10) return fail("300 ms did not advance ~300 ms of frames");
    if (b.frames_queued >= a.frames_queued || b.latency_ms < 0) return fail("queue did not shrink, or no latency");
    if (!player.drain(std::chrono::seconds(5))) return fail("drain timed out");
    if (player.position().frames_heard != written || player.position().frames_queued != 0)
        return fail("after drain the position is not the end");

    if (other) {
        player.set_device(other->id);
        if (!wait_event(player, AP_EVENT_DEVICE_CHANGED, 3000)) return fail("no device_changed after set_device");
        written += player.write(second);
        if (!player.drain(std::chrono::seconds(5))) return fail("drain timed out on the other device");
        ApMetrics m = player.metrics();
        std::printf("moved to %s: stream %u Hz, played %llu of %llu\n", m.device_id, m.stream_rate,
                    static_cast<unsigned long long>(m.frames_played), static_cast<unsigned long long>(written));
        if (other->id != m.device_id || m.stream_rate != other->rate || player.state().device_id != other->id)
            return fail("set_device did not move playback");
        if (m.frames_played != written || m.underruns != 0) return fail("frames lost on the move");

        player.set_device(nullptr);  // follow the default again
        if (!wait_event(player, AP_EVENT_DEVICE_CHANGED, 3000)) return fail("no device_changed back to the default");
        if (def->id != player.metrics().device_id) return fail("set_device(nullptr) did not return to the default");
    } else {
        std::printf("one device only: set_device not exercised\n");
    }

    // A device that is not there: the exception carries the library's reason.
    try {
        player.set_device(std::string("no-such-device"));
        return fail("set_device(no-such-device) succeeded");
    } catch (const ap::Error &e) {
        if (e.status() != AP_ERR_NO_DEVICE || !contains(e.what(), "no-such-device")) return fail(e.what());
        std::printf("missing device: %s\n", e.what());
    }
    try {
        player.set_device(std::string("a\0b", 3));
        return fail("a device id with a NUL byte was accepted");
    } catch (const ap::Error &e) {
        if (e.status() != AP_ERR_INVALID_ARG) return fail(e.what());
    }
    std::error_code ec;
    player.set_device(std::string("no-such-device"), ec);
    if (ec != std::error_code(AP_ERR_NO_DEVICE)) return fail("error_code overload");
    (void)player.position(ec);
    if (ec) return fail("position(ec) failed");
    std::printf("ok\n");
    return 0;
}
