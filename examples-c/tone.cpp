// tone.cpp: the C++ wrapper (audioplay.hpp) in C++17: RAII, exceptions, std::error_code.
// Plays a tone, barges in halfway through a second one, prints the metrics.
#include <audioplay.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

int main() {
    // Errors come back as exceptions carrying the status...
    try {
        ap::Config bad;
        bad.c.input_channels = 0;
        ap::Player p(bad);
        std::puts("expected an error");
        return 1;
    } catch (const ap::Error &e) {
        // what() carries the library's reason (ap_create_ex), which names the field.
        if (e.status() != AP_ERR_INVALID_ARG || !std::strstr(e.what(), "input_channels")) return 1;
        std::printf("bad config rejected: %s\n", e.what());
    }
    // ...or through std::error_code, without throwing.
    ap::Config bad;
    bad.c.input_rate = 5;
    std::error_code ec;
    ap::Player unused(bad, ec);
    if (ec != std::error_code(AP_ERR_INVALID_ARG)) return 1;
    std::printf("error_code: %s\n", ec.message().c_str());

    ap::Config cfg;
    cfg.c.input_format = AP_FORMAT_F32;
    cfg.c.input_rate = 24000;
    ap::Player player(cfg);
    std::vector<float> tone(24000);
    for (std::size_t i = 0; i < tone.size(); i++)
        tone[i] = 0.5f * static_cast<float>(std::sin(2.0 * M_PI * 440.0 * i / 24000.0));
    player.mark(1);
    player.write(tone);
    if (!player.drain(std::chrono::seconds(5))) return 1;

    player.write(tone);
    ap::Player moved = std::move(player);  // move-only handle
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    std::uint64_t heard = moved.flush(std::chrono::milliseconds(10));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ApMetrics m = moved.metrics();
    std::printf("played %llu, flushed %llu at frame %llu, underruns %llu\n",
                static_cast<unsigned long long>(m.frames_played),
                static_cast<unsigned long long>(m.frames_flushed),
                static_cast<unsigned long long>(heard), static_cast<unsigned long long>(m.underruns));
    int markers = 0;
    while (auto e = moved.poll_event()) markers += e->kind == AP_EVENT_MARKER;
    return (m.frames_flushed > 0 && m.underruns == 0 && markers == 1) ? 0 : 1;
}
