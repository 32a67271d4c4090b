#include "codec/atomic_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>

#include "kernels/common.h"

namespace mg {

namespace {

constexpr char kTempTag[] = ".musicgen-tmp-";
constexpr size_t kSuffixLen = 6;
constexpr time_t kStaleSeconds = 3600;  // a leftover this old cannot be a write still running

struct SplitPath {
  std::string dir;   // "." when the path has no folder
  std::string name;
};

SplitPath split(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return {".", path};
  return {slash == 0 ? "/" : path.substr(0, slash), path.substr(slash + 1)};
}

std::string errno_text(int err) { return std::strerror(err); }

const char* kind_of(mode_t m) {
  if (S_ISDIR(m)) return "a folder";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISFIFO(m)) return "a FIFO (named pipe)";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// Names of the standard streams: the library writes files, so these are refused by name (a
// /dev/stdout redirected to a file would otherwise be replaced behind the shell's back).
bool is_stream_name(const std::string& p) {
  return p == "-" || p == "/dev/stdout" || p == "/dev/stderr" || p == "/dev/stdin" || starts_with(p, "/dev/fd/") ||
         starts_with(p, "/proc/self/fd/") || starts_with(p, "/proc/thread-self/fd/");
}

// The file a write to `path` replaces: `path` itself (new or a regular file), or the regular file
// a symlink at `path` resolves to. Anything else is refused before a byte is written.
std::string resolve_destination(const std::string& path) {
  MG_CHECK(!path.empty(), "cannot write a file: the path is empty");
  MG_CHECK(!is_stream_name(path), "cannot write '", path, "': it is a standard stream, not a file (the library writes ",
           "regular files only; musicgen-cli --stream - streams audio to standard output)");
  struct stat ls {};
  if (::lstat(path.c_str(), &ls) != 0) {
    const int err = errno;
    MG_CHECK(err == ENOENT, "cannot write '", path, "': ", errno_text(err));
    return path;  // a new file; a missing folder is reported when the temporary file is made
  }
  if (S_ISREG(ls.st_mode)) return path;
  MG_CHECK(S_ISLNK(ls.st_mode), "cannot write '", path, "': it is ", kind_of(ls.st_mode),
           ", not a regular file (nothing was written)");
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw Error(strcat("cannot write '", path, "': it is a symbolic link that does not resolve (", errno_text(errno),
                       "); remove it or write elsewhere"));
  MG_CHECK(S_ISREG(st.st_mode), "cannot write '", path, "': it is a symbolic link to ", kind_of(st.st_mode),
           ", not to a regular file (nothing was written)");
  char* real = ::realpath(path.c_str(), nullptr);
  MG_CHECK(real, "cannot write '", path, "': cannot resolve the symbolic link: ", errno_text(errno));
  std::string out(real);
  std::free(real);
  return out;
}

// Removes this destination's temporary files that a killed writer left over an hour ago. Only
// regular files owned by this user are touched (never a symlink that happens to match the name).
void remove_stale_temps(const SplitPath& dest) {
  DIR* d = ::opendir(dest.dir.c_str());
  if (!d) return;
  const std::string prefix = "." + dest.name + kTempTag;
  const time_t now = std::time(nullptr);
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.size() != prefix.size() + kSuffixLen || !starts_with(name, prefix.c_str())) continue;
    struct stat st {};
    if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (!S_ISREG(st.st_mode) || st.st_uid != ::geteuid() || now - st.st_mtime < kStaleSeconds) continue;
    ::unlinkat(::dirfd(d), e->d_name, 0);
  }
  ::closedir(d);
}

int64_t byte_count_from_env(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return -1;
  char* end = nullptr;
  const long long n = std::strtoll(v, &end, 10);
  return (*end == '\0' && n >= 0) ? int64_t(n) : -1;
}

}  // namespace

std::string atomic_temp_prefix(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  return dir + "." + split(path).name + kTempTag;
}

AtomicFile::AtomicFile(const std::string& path)
    : path_(path),
      fail_after_(byte_count_from_env("MUSICGEN_TEST_FAIL_WRITE_AFTER")),
      stall_after_(byte_count_from_env("MUSICGEN_TEST_STALL_WRITE_AFTER")) {
  target_ = resolve_destination(path);
  const SplitPath dest = split(target_);
  MG_CHECK(!dest.name.empty() && dest.name != "." && dest.name != "..", "cannot write '", path,
           "': the path names a folder, not a file");
  remove_stale_temps(dest);

  // O_EXCL with a fresh random suffix: an existing name (a planted symlink included) is never
  // opened. 0666 so the new file gets the permissions the umask gives any new file.
  static constexpr char kChars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::random_device rd;
  std::uniform_int_distribution<int> pick(0, int(sizeof kChars) - 2);
  const std::string prefix = atomic_temp_prefix(target_);
  int err = 0;
  for (int attempt = 0; attempt < 64 && fd_ < 0; ++attempt) {
    std::string suffix(kSuffixLen, 'x');
    for (char& c : suffix) c = kChars[pick(rd)];
    temp_path_ = prefix + suffix;
    fd_ = ::open(temp_path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    err = errno;
    if (fd_ < 0 && err != EEXIST) break;
  }
  MG_CHECK(fd_ >= 0, "cannot write '", path, "': cannot create a temporary file in ", dest.dir, ": ", errno_text(err));
  // Replacing a file keeps its permission bits, as writing into it would have.
  struct stat old {};
  if (::stat(target_.c_str(), &old) == 0 && S_ISREG(old.st_mode)) ::fchmod(fd_, old.st_mode & 07777);
}

AtomicFile::~AtomicFile() {
  close_fd();
  if (!committed_ && !temp_path_.empty()) ::unlink(temp_path_.c_str());
}

void AtomicFile::close_fd() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool AtomicFile::write(const void* data, size_t n) {
  if (failed() || fd_ < 0) return false;
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    size_t chunk = n;
    if (fail_after_ >= 0) {
      if (written_ >= fail_after_) {
        error_ = errno_text(ENOSPC) + " (MUSICGEN_TEST_FAIL_WRITE_AFTER)";
        return false;
      }
      chunk = std::min<size_t>(chunk, size_t(fail_after_ - written_));
    }
    if (stall_after_ >= 0) {
      if (written_ >= stall_after_) {
        stall_after_ = -1;
        ::sleep(60);  // the test hook of atomic_file.h: a kill -9 lands here
      } else {
        chunk = std::min<size_t>(chunk, size_t(stall_after_ - written_));
      }
    }
    const ssize_t k = ::write(fd_, p, chunk);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) {
      error_ = k < 0 ? errno_text(errno) : "the system wrote nothing";
      return false;
    }
    p += k;
    n -= size_t(k);
    written_ += k;
  }
  return true;
}

void AtomicFile::write_all(const void* data, size_t n) {
  write(data, n);
  check();
}

int64_t AtomicFile::seek(int64_t offset, int whence) { return fd_ < 0 ? -1 : ::lseek(fd_, offset, whence); }

int64_t AtomicFile::tell() const { return fd_ < 0 ? -1 : ::lseek(fd_, 0, SEEK_CUR); }

int64_t AtomicFile::size() const {
  struct stat st {};
  return (fd_ >= 0 && ::fstat(fd_, &st) == 0) ? int64_t(st.st_size) : -1;
}

int64_t AtomicFile::read(void* data, size_t n) {
  if (fd_ < 0) return -1;
  ssize_t k;
  do k = ::read(fd_, data, n);
  while (k < 0 && errno == EINTR);
  return k;
}

void AtomicFile::fail(const std::string& reason) {
  if (error_.empty()) error_ = reason;
}

void AtomicFile::check() const {
  MG_CHECK(error_.empty(), "cannot write '", path_, "': ", error_);
}

void AtomicFile::commit() {
  check();
  MG_CHECK(fd_ >= 0, "cannot write '", path_, "': the file is already closed");
  // fsync before rename: after a crash the name holds the old file or the new one, never a hole.
  if (::fsync(fd_) != 0) fail(strcat("fsync failed: ", errno_text(errno)));
  check();
  const int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0) fail(strcat("closing the file failed: ", errno_text(errno)));
  check();
  if (::rename(temp_path_.c_str(), target_.c_str()) != 0)
    fail(strcat("renaming the temporary file ", temp_path_, " failed: ", errno_text(errno)));
  check();
  committed_ = true;
  // The rename itself reaches the disk with the folder's fsync; best effort (some file systems refuse).
  const int dfd = ::open(split(target_).dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void write_file_atomic(const std::string& path, const void* data, size_t n) {
  AtomicFile f(path);
  f.write_all(data, n);
  f.commit();
}

}  // namespace mg
