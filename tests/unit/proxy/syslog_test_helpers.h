#pragma once
// Reading fields of parsed syslog events in the syslog parser tests.
#include <boost/json.hpp>
#include <stdexcept>
#include <string>

#include "common/batch.h"
#include "common/time.h"

namespace bf::syslog_test {

inline int64_t at(const char* iso) {
  auto t = parse_rfc3339(iso, true);
  if (!t) throw std::runtime_error(std::string("bad test timestamp ") + iso);
  return *t;
}

// The string field, or a marker saying it is absent or not a string.
inline std::string str(const Event& e, const char* key) {
  auto* v = e.if_contains(key);
  if (!v) return "<absent>";
  if (!v->is_string()) return "<not a string: " + boost::json::serialize(*v) + ">";
  return std::string(v->as_string());
}

inline int64_t num(const Event& e, const char* key) {
  auto* v = e.if_contains(key);
  return v && v->is_int64() ? v->as_int64() : -1;
}

inline bool flag(const Event& e, const char* key) {
  auto* v = e.if_contains(key);
  return v && v->is_bool() && v->as_bool();
}

inline const boost::json::object& obj(const Event& e, const char* key) {
  static const boost::json::object none;
  auto* v = e.if_contains(key);
  return v && v->is_object() ? v->as_object() : none;
}

}  // namespace bf::syslog_test
