// A thin, checked view over a JSON document (HF config.json, index files): every read says what it
// wanted, so a missing key or a wrong type becomes an mg::Error naming the key, the expected type
// and the file, instead of nlohmann's generic type_error. Unknown keys are ignored, as HF does.
#pragma once

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/common.h"

namespace mg {

namespace json_detail {

template <typename T>
struct is_vector : std::false_type {};
template <typename T>
struct is_vector<std::vector<T>> : std::true_type {};

// What a C++ type means in JSON, for error messages ("integer", "array of number").
template <typename T>
std::string type_name() {
  if constexpr (std::is_same_v<T, bool>)
    return "boolean";
  else if constexpr (std::is_integral_v<T>)
    return "integer";
  else if constexpr (std::is_floating_point_v<T>)
    return "number";
  else if constexpr (std::is_same_v<T, std::string>)
    return "string";
  else if constexpr (is_vector<T>::value)
    return "array of " + type_name<typename T::value_type>();
  else if constexpr (std::is_same_v<T, nlohmann::json>)
    return "any JSON value";
  else
    static_assert(sizeof(T) == 0, "unsupported JsonConfig value type");
}

// Whether `j` holds a T without loss: integers must be JSON integers (2.0 is not an int: HF
// writes ints as ints, and a float there means a wrong file), and must fit T's range.
template <typename T>
bool holds(const nlohmann::json& j) {
  if constexpr (std::is_same_v<T, bool>) {
    return j.is_boolean();
  } else if constexpr (std::is_integral_v<T>) {
    if (j.is_number_unsigned()) return j.get<uint64_t>() <= uint64_t(std::numeric_limits<T>::max());
    if (j.is_number_integer()) {
      int64_t v = j.get<int64_t>();
      return v >= int64_t(std::numeric_limits<T>::min()) &&
             (v < 0 || uint64_t(v) <= uint64_t(std::numeric_limits<T>::max()));
    }
    return false;
  } else if constexpr (std::is_floating_point_v<T>) {
    return j.is_number();
  } else if constexpr (std::is_same_v<T, std::string>) {
    return j.is_string();
  } else if constexpr (is_vector<T>::value) {
    if (!j.is_array()) return false;
    for (const auto& e : j)
      if (!holds<typename T::value_type>(e)) return false;
    return true;
  } else {
    return true;  // nlohmann::json
  }
}

}  // namespace json_detail

class JsonConfig {
 public:
  // Reads and parses a file; unreadable or not JSON is an error naming the file (and, for a parse
  // error, the line/column and byte offset). The top level must be an object.
  static JsonConfig load(const std::string& path);
  // Parses text already in memory; `source` names it in errors (e.g. the file it came from).
  static JsonConfig parse(const std::string& text, const std::string& source);
  // Wraps a parsed value; `where` is the dotted key path of `j` inside `source` ("" = top level).
  JsonConfig(nlohmann::json j, std::string source, std::string where = "");

  // True when the key is present and not null (HF writes absent optionals as null).
  bool has(const std::string& key) const;
  // The value of a required key: missing, null or of the wrong type is an error.
  template <typename T>
  T req(const std::string& key) const;
  // The value, or `def` when the key is missing or null; a present value of the wrong type is
  // still an error (a typo'd type must not silently become the default).
  template <typename T>
  T opt(const std::string& key, const T& def) const;
  // As opt() without a default: nullopt when missing or null.
  template <typename T>
  std::optional<T> maybe(const std::string& key) const;
  // opt() of a number that must lie in [lo, hi]: outside it (NaN included) is an error naming the
  // key, the source and the range, so that a hostile size never reaches an allocation or a division.
  template <typename T>
  T opt_in(const std::string& key, const T& def, T lo, T hi) const;
  // As opt_in() for a required key.
  template <typename T>
  T req_in(const std::string& key, T lo, T hi) const;
  // The range check of opt_in() on a value already read (e.g. an element of an array).
  template <typename T>
  void check_in(const std::string& key, T v, T lo, T hi) const;
  // A nested object; missing or not an object is an error.
  JsonConfig sub(const std::string& key) const;

  std::vector<std::string> keys() const;  // top-level keys of this object, sorted
  const nlohmann::json& json() const { return j_; }
  const std::string& source() const { return source_; }
  // "key" or "parent.key": how errors name a key of this object.
  std::string key_path(const std::string& key) const { return where_.empty() ? key : where_ + "." + key; }

 private:
  [[noreturn]] void fail_type(const std::string& key, const std::string& expected) const;
  const nlohmann::json* find(const std::string& key) const;  // nullptr when absent

  nlohmann::json j_;
  std::string source_;
  std::string where_;
};

template <typename T>
std::optional<T> JsonConfig::maybe(const std::string& key) const {
  const nlohmann::json* v = find(key);
  if (v == nullptr || v->is_null()) return std::nullopt;
  if (!json_detail::holds<T>(*v)) fail_type(key, json_detail::type_name<T>());
  return v->get<T>();
}

template <typename T>
T JsonConfig::req(const std::string& key) const {
  const nlohmann::json* v = find(key);
  MG_CHECK(v != nullptr, "missing required key '", key_path(key), "' (", json_detail::type_name<T>(), ") in ",
           source_);
  MG_CHECK(!v->is_null(), "key '", key_path(key), "' is null, expected ", json_detail::type_name<T>(), " in ",
           source_);
  if (!json_detail::holds<T>(*v)) fail_type(key, json_detail::type_name<T>());
  return v->get<T>();
}

template <typename T>
T JsonConfig::opt(const std::string& key, const T& def) const {
  std::optional<T> v = maybe<T>(key);
  return v ? *v : def;
}

template <typename T>
void JsonConfig::check_in(const std::string& key, T v, T lo, T hi) const {
  static_assert(std::is_arithmetic_v<T>, "check_in takes numbers");
  // Written as "not inside" so that a NaN is outside.
  MG_CHECK(v >= lo && v <= hi, "key '", key_path(key), "' in ", source_, ": must be in [", lo, ", ", hi, "], found ", v);
}

template <typename T>
T JsonConfig::opt_in(const std::string& key, const T& def, T lo, T hi) const {
  const T v = opt<T>(key, def);
  check_in(key, v, lo, hi);
  return v;
}

template <typename T>
T JsonConfig::req_in(const std::string& key, T lo, T hi) const {
  const T v = req<T>(key);
  check_in(key, v, lo, hi);
  return v;
}

}  // namespace mg
