// swift-tools-version:5.7
import PackageDescription

// A thin Swift wrapper over the audioplay C library. Build with the library installed where
// the linker finds it (scripts/install.sh --prefix /usr/local), or pass
// -Xcc -I<prefix>/include -Xlinker -L<prefix>/lib.
let package = Package(
    name: "AudioPlay",
    products: [.library(name: "AudioPlay", targets: ["AudioPlay"])],
    targets: [
        .systemLibrary(name: "CAudioPlay", path: "Sources/CAudioPlay", pkgConfig: "audioplay"),
        .target(name: "AudioPlay", dependencies: ["CAudioPlay"]),
    ]
)
