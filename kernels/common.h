// Errors and checks shared by every layer. The library never calls exit(): a failed check throws
// mg::Error with a message that says what went wrong and where; the C API turns it into a status.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace mg {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Builds a message from any streamable pieces: mg::strcat("tensor ", name, " has ", n, " dims").
template <typename... Args>
std::string strcat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

}  // namespace mg

// MG_CHECK(cond, pieces...): throw mg::Error("pieces") when cond is false.
#define MG_CHECK(cond, ...)                                        \
  do {                                                             \
    if (!(cond)) throw ::mg::Error(::mg::strcat(__VA_ARGS__));     \
  } while (0)
