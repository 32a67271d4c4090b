// codec/atomic_file: every file the library writes appears complete or not at all. Destinations
// that are not regular files are refused and left as they were, planted names are never
// followed, a full disk (injected, or a small tmpfs where the test may mount one) leaves no file,
// and two processes writing one path end with one complete file.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "codec/atomic_file.h"
#include "conditioning/chroma.h"
#include "conditioning/chroma_png.h"
#include "conditioning/chords.h"
#include "conditioning/composer.h"
#include "test_util.h"

namespace fs = std::filesystem;
using mgtest::error_of;
using mgtest::slurp;

namespace {

std::vector<std::string> listing(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

void put(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

std::vector<uint8_t> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }

// Sets MUSICGEN_TEST_FAIL_WRITE_AFTER for one scope.
struct FailWritesAfter {
  explicit FailWritesAfter(long n) { setenv("MUSICGEN_TEST_FAIL_WRITE_AFTER", std::to_string(n).c_str(), 1); }
  ~FailWritesAfter() { unsetenv("MUSICGEN_TEST_FAIL_WRITE_AFTER"); }
};

TEST(AtomicFile, WritesReplacesAndLeavesNoTemporary) {
  const std::string dir = mgtest::test_case_dir(), path = dir + "/out.bin";
  mg::write_file_atomic(path, bytes_of("first"));
  mg::write_file_atomic(path, bytes_of("second"));
  EXPECT_EQ(slurp(path), "second");
  EXPECT_EQ(listing(dir), std::vector<std::string>{"out.bin"});
  EXPECT_EQ(mg::atomic_temp_prefix(path), dir + "/.out.bin.musicgen-tmp-");
  EXPECT_EQ(mg::atomic_temp_prefix("out.bin"), ".out.bin.musicgen-tmp-");
}

TEST(AtomicFile, KeepsThePermissionsOfTheFileItReplaces) {
  const std::string dir = mgtest::test_case_dir(), path = dir + "/out.bin";
  put(path, "old");
  ASSERT_EQ(chmod(path.c_str(), 0640), 0);
  mg::write_file_atomic(path, bytes_of("new"));
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
}

TEST(AtomicFile, RefusesDevicesAndLeavesThemAlone) {
  for (const std::string dev : {"/dev/full", "/dev/null"}) {
    struct stat before {};
    if (stat(dev.c_str(), &before) != 0) continue;
    const std::string err = error_of([&] { mg::write_file_atomic(dev, bytes_of("x")); });
    EXPECT_NE(err.find("'" + dev + "': it is a character device, not a regular file"), std::string::npos) << err;
    struct stat after {};
    ASSERT_EQ(lstat(dev.c_str(), &after), 0);
    EXPECT_TRUE(S_ISCHR(after.st_mode)) << dev << " was replaced";
  }
}

TEST(AtomicFile, RefusesFifoFolderAndStreamNames) {
  const std::string dir = mgtest::test_case_dir(), fifo = dir + "/pipe.wav";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_NE(error_of([&] { mg::write_file_atomic(fifo, bytes_of("x")); }).find("a FIFO (named pipe)"),
            std::string::npos);
  struct stat st {};
  ASSERT_EQ(lstat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  fs::create_directory(dir + "/sub");
  EXPECT_NE(error_of([&] { mg::write_file_atomic(dir + "/sub", bytes_of("x")); }).find("a folder"), std::string::npos);
  for (const std::string s : {"-", "/dev/stdout", "/dev/stderr", "/proc/self/fd/1"})
    EXPECT_NE(error_of([&] { mg::write_file_atomic(s, bytes_of("x")); }).find("standard stream"), std::string::npos)
        << s;
  EXPECT_EQ(listing(dir), (std::vector<std::string>{"pipe.wav", "sub"}));
  EXPECT_TRUE(fs::is_empty(dir + "/sub"));
}

// A symlink to a regular file is followed on purpose: the file it points to is replaced, the link
// stays. One that dangles or points at a device or FIFO is refused.
TEST(AtomicFile, SymlinkToARegularFileIsFollowed) {
  const std::string dir = mgtest::test_case_dir();
  fs::create_directory(dir + "/real");
  put(dir + "/real/target.bin", "old");
  fs::create_symlink("real/target.bin", dir + "/link.bin");
  mg::write_file_atomic(dir + "/link.bin", bytes_of("new"));
  EXPECT_TRUE(fs::is_symlink(dir + "/link.bin"));
  EXPECT_EQ(slurp(dir + "/real/target.bin"), "new");
  EXPECT_EQ(listing(dir), (std::vector<std::string>{"link.bin", "real"}));
  EXPECT_EQ(listing(dir + "/real"), std::vector<std::string>{"target.bin"});

  fs::create_symlink("missing.bin", dir + "/dangling.bin");
  EXPECT_NE(error_of([&] { mg::write_file_atomic(dir + "/dangling.bin", bytes_of("x")); }).find("does not resolve"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(dir + "/missing.bin"));
  fs::create_symlink("/dev/full", dir + "/dev.bin");
  EXPECT_NE(error_of([&] { mg::write_file_atomic(dir + "/dev.bin", bytes_of("x")); })
                .find("symbolic link to a character device"),
            std::string::npos);
  EXPECT_TRUE(fs::is_symlink(dir + "/dev.bin"));
}

// The temporary name is random and opened with O_EXCL: symlinks planted under the names an
// attacker could guess (the old fixed names, and the new pattern) are never written through, and
// the stale-file cleanup never removes a symlink.
TEST(AtomicFile, PlantedSymlinksAreNotFollowed) {
  const std::string dir = mgtest::test_case_dir(), victim_dir = mgtest::temp_dir() + "/planted-victim";
  fs::create_directories(victim_dir);
  const std::string victim = victim_dir + "/precious";
  put(victim, "precious");
  const std::vector<std::string> planted = {".out.ecdc.tmp-encodec", "out.ecdc.tmp-png", ".out.ecdc.musicgen-tmp-AAAAAA",
                                            ".out.ecdc.musicgen-tmp-zzzzzz"};
  for (const auto& name : planted) fs::create_symlink(victim, dir + "/" + name);
  // Old enough for the stale cleanup: it must still leave symlinks alone.
  for (const auto& name : planted) {
    const struct timespec old[2] = {{std::time(nullptr) - 7200, 0}, {std::time(nullptr) - 7200, 0}};
    utimensat(AT_FDCWD, (dir + "/" + name).c_str(), old, AT_SYMLINK_NOFOLLOW);
  }
  for (int i = 0; i < 20; ++i) mg::write_file_atomic(dir + "/out.ecdc", bytes_of("codes " + std::to_string(i)));
  EXPECT_EQ(slurp(victim), "precious");
  EXPECT_EQ(slurp(dir + "/out.ecdc"), "codes 19");
  for (const auto& name : planted) EXPECT_TRUE(fs::is_symlink(dir + "/" + name)) << name;
  EXPECT_EQ(listing(dir).size(), planted.size() + 1);
}

TEST(AtomicFile, RemovesItsOwnStaleTemporariesOnly) {
  const std::string dir = mgtest::test_case_dir();
  const std::string stale = dir + "/.out.wav.musicgen-tmp-abc123", fresh = dir + "/.out.wav.musicgen-tmp-def456",
                    other = dir + "/.other.wav.musicgen-tmp-abc123";
  for (const auto& p : {stale, fresh, other}) put(p, "leftover");
  const struct timespec old[2] = {{std::time(nullptr) - 7200, 0}, {std::time(nullptr) - 7200, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, stale.c_str(), old, 0), 0);
  ASSERT_EQ(utimensat(AT_FDCWD, other.c_str(), old, 0), 0);
  mg::write_file_atomic(dir + "/out.wav", bytes_of("x"));
  EXPECT_FALSE(fs::exists(stale)) << "an hour-old leftover of this output stays";
  EXPECT_TRUE(fs::exists(fresh)) << "a young temporary may belong to a writer still running";
  EXPECT_TRUE(fs::exists(other)) << "another output's leftovers are not this write's business";
}

TEST(AtomicFile, InjectedFullDiskLeavesTheOldFileAndNoTemporary) {
  const std::string dir = mgtest::test_case_dir(), path = dir + "/out.bin";
  put(path, "old");
  for (long after : {0L, 1L, 4095L}) {
    FailWritesAfter hook(after);
    const std::string err = error_of([&] { mg::write_file_atomic(path, std::vector<uint8_t>(10000, 7)); });
    EXPECT_NE(err.find("'" + path + "': No space left on device"), std::string::npos) << err;
    EXPECT_EQ(slurp(path), "old");
    EXPECT_EQ(listing(dir), std::vector<std::string>{"out.bin"});
  }
  mg::write_file_atomic(path, bytes_of("new"));  // the hook is gone with its scope
  EXPECT_EQ(slurp(path), "new");
}

TEST(AtomicFile, InjectedFullDiskForMidiAndPng) {
  const std::string dir = mgtest::test_case_dir();
  FailWritesAfter hook(20);
  const std::string midi_err =
      error_of([&] { mg::write_composition_midi(mg::compose("A minor; i VI III VII", 1), dir + "/m.mid"); });
  EXPECT_NE(midi_err.find("No space left on device"), std::string::npos) << midi_err;
#ifdef MUSICGEN_HAVE_PNG
  const std::string png_err = error_of([&] { mg::write_chroma_png(dir + "/c.png", mg::chords_to_chroma("C G")); });
  EXPECT_NE(png_err.find("No space left on device"), std::string::npos) << png_err;
#endif
  EXPECT_TRUE(fs::is_empty(dir));
}

// A real full disk: a 64 KiB tmpfs, where this test may mount one (root in a namespace that
// allows it). Elsewhere the injected failure above covers the same path.
TEST(AtomicFile, RealFullDiskOnASmallTmpfs) {
  const std::string dir = mgtest::test_case_dir();
  if (mount("tmpfs", dir.c_str(), "tmpfs", 0, "size=64k") != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here (" << std::strerror(errno) << "): covered by the injected failure";
  struct Unmount {
    std::string dir;
    ~Unmount() { umount(dir.c_str()); }
  } unmount{dir};
  put(dir + "/out.bin", "old");
  const std::string err = error_of([&] { mg::write_file_atomic(dir + "/out.bin", std::vector<uint8_t>(1 << 20, 1)); });
  EXPECT_NE(err.find("No space left on device"), std::string::npos) << err;
  EXPECT_EQ(slurp(dir + "/out.bin"), "old");
  EXPECT_EQ(listing(dir), std::vector<std::string>{"out.bin"});
}

// Two processes writing one path over and over: the file is always one writer's whole content.
TEST(AtomicFile, TwoProcessesEndWithOneCompleteFile) {
  const std::string dir = mgtest::test_case_dir(), path = dir + "/out.bin";
  const std::vector<uint8_t> a(4 << 20, 'a'), b(3 << 20, 'b');
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    try {
      for (int i = 0; i < 10; ++i) mg::write_file_atomic(path, a);
    } catch (...) {
      _exit(1);
    }
    _exit(0);
  }
  for (int i = 0; i < 10; ++i) mg::write_file_atomic(path, b);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  const std::string got = slurp(path);
  EXPECT_TRUE(got == std::string(a.begin(), a.end()) || got == std::string(b.begin(), b.end()))
      << "mixed content, " << got.size() << " bytes";
  EXPECT_EQ(listing(dir), std::vector<std::string>{"out.bin"});
}

}  // namespace
