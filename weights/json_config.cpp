#include "weights/json_config.h"

#include <fstream>
#include <sstream>

namespace mg {

namespace {

// nlohmann reports the kind of the value; name it as the JSON spec would, for error messages.
std::string json_kind(const nlohmann::json& j) {
  if (j.is_number_integer()) return "integer " + j.dump();
  if (j.is_number_float()) return "number " + j.dump();
  std::string dumped = j.dump();
  if (dumped.size() > 40) dumped = dumped.substr(0, 37) + "...";
  return std::string(j.type_name()) + " " + dumped;
}

}  // namespace

JsonConfig::JsonConfig(nlohmann::json j, std::string source, std::string where)
    : j_(std::move(j)), source_(std::move(source)), where_(std::move(where)) {}

JsonConfig JsonConfig::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  MG_CHECK(in.good(), "cannot open JSON file ", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  MG_CHECK(!in.bad(), "cannot read JSON file ", path);
  return parse(ss.str(), path);
}

JsonConfig JsonConfig::parse(const std::string& text, const std::string& source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    // e.what() carries "line L, column C"; the byte offset helps with minified files.
    throw Error(strcat(source, " is not valid JSON at byte ", e.byte, ": ", e.what()));
  } catch (const nlohmann::json::exception& e) {
    // The parser throws out_of_range (not parse_error) for a number beyond double's range (1e999):
    // it must still be an mg::Error, not an exception the callers do not expect (found by fuzzing).
    throw Error(strcat(source, " is not valid JSON: ", e.what()));
  }
  MG_CHECK(j.is_object(), source, " must hold a JSON object at the top level, found ", j.type_name());
  return JsonConfig(std::move(j), source);
}

const nlohmann::json* JsonConfig::find(const std::string& key) const {
  if (!j_.is_object()) return nullptr;
  auto it = j_.find(key);
  return it == j_.end() ? nullptr : &*it;
}

bool JsonConfig::has(const std::string& key) const {
  const nlohmann::json* v = find(key);
  return v != nullptr && !v->is_null();
}

void JsonConfig::fail_type(const std::string& key, const std::string& expected) const {
  throw Error(strcat("key '", key_path(key), "' in ", source_, ": expected ", expected, ", found ",
                     json_kind(*find(key))));
}

JsonConfig JsonConfig::sub(const std::string& key) const {
  const nlohmann::json* v = find(key);
  MG_CHECK(v != nullptr, "missing required key '", key_path(key), "' (object) in ", source_);
  if (!v->is_object()) fail_type(key, "object");
  return JsonConfig(*v, source_, key_path(key));
}

std::vector<std::string> JsonConfig::keys() const {
  std::vector<std::string> out;
  if (j_.is_object())
    for (auto it = j_.begin(); it != j_.end(); ++it) out.push_back(it.key());
  return out;  // nlohmann's default object is a std::map: already sorted
}

}  // namespace mg
