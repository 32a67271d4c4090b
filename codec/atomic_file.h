// Every file the library writes (audio, .ecdc, chroma PNG, MIDI) goes through AtomicFile, so each
// one appears complete or not at all:
//   check the destination -> create a fresh temporary file next to it (O_CREAT | O_EXCL with a
//   random suffix: a planted name or symlink is never followed) -> write, every write checked ->
//   fsync -> close, checked -> rename over the destination.
// On any failure the temporary file is removed and an mg::Error names the path and the reason
// (strerror, e.g. "No space left on device"); an existing file at the destination is untouched.
//
// Destinations (see "Writing files" in docs/ARCHITECTURE.md):
//   - a new name or an existing regular file: replaced as above;
//   - a symlink to a regular file: followed on purpose; the file it points to is replaced and the
//     link stays a link (a dangling link or a loop is refused);
//   - a device (/dev/null, /dev/full), FIFO, socket or folder: refused, nothing is created;
//   - "-" and /dev/stdout, /dev/stderr, /dev/fd/N, /proc/self/fd/N: refused (the library writes
//     files; musicgen-cli --stream - streams audio to standard output itself).
// Temporary files are named ".<name>.musicgen-tmp-XXXXXX" so leftovers of a killed process are
// recognisable; each write removes those of the same destination older than an hour (younger ones
// may belong to a writer still running).
//
// Test hook: MUSICGEN_TEST_FAIL_WRITE_AFTER=N in the environment makes every AtomicFile fail with
// ENOSPC once N bytes have been written to it, to test full-disk handling without a full disk.
//
// Test hook: MUSICGEN_TEST_STALL_WRITE_AFTER=N makes the writer stop for 60 s once N bytes are in
// the temporary file, so that a test can kill the process mid-write (kill -9 leaves the temporary,
// never a file at the output path; the next write removes temporaries older than an hour).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace mg {

class AtomicFile {
 public:
  // Checks `path`, removes its stale temporary files and creates a new one; throws mg::Error when
  // the destination is refused or its folder is not writable.
  explicit AtomicFile(const std::string& path);
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();  // removes the temporary file unless commit() succeeded

  // Writes all of `data` at the current offset. Never throws (it runs inside C callbacks of
  // libsndfile and libpng): false on failure, and the first failure is kept for check()/commit().
  bool write(const void* data, size_t n);
  // Throwing form of write().
  void write_all(const void* data, size_t n);
  // Seek, tell and size for libsndfile's virtual I/O (a WAV header is rewritten at the end).
  int64_t seek(int64_t offset, int whence);
  int64_t tell() const;
  int64_t size() const;
  int64_t read(void* data, size_t n);

  // Records a failure found by the caller (an encoder error): commit() will refuse.
  void fail(const std::string& reason);
  bool failed() const { return !error_.empty(); }
  // Throws the recorded failure, if any, as an mg::Error naming the destination.
  void check() const;

  // fsync, close and rename over the destination; throws (and removes the temporary) on failure.
  void commit();

  const std::string& path() const { return path_; }            // as the caller gave it
  const std::string& temp_path() const { return temp_path_; }  // the temporary file

 private:
  void close_fd();

  std::string path_;       // what the caller asked for (for messages)
  std::string target_;     // what is replaced: path_, or the regular file a symlink points to
  std::string temp_path_;
  int fd_ = -1;
  int64_t written_ = 0;          // bytes written, for the test hook
  int64_t fail_after_ = -1;      // MUSICGEN_TEST_FAIL_WRITE_AFTER, -1 when unset
  int64_t stall_after_ = -1;     // MUSICGEN_TEST_STALL_WRITE_AFTER, -1 when unset
  std::string error_;            // the first failure, "" when none
  bool committed_ = false;
};

// The whole of `bytes` as the file at `path`, through AtomicFile.
void write_file_atomic(const std::string& path, const void* data, size_t n);
inline void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes) {
  write_file_atomic(path, bytes.data(), bytes.size());
}

// The prefix of the temporary files of `path` (".<name>.musicgen-tmp-"), for tests and cleanup.
std::string atomic_temp_prefix(const std::string& path);

}  // namespace mg
