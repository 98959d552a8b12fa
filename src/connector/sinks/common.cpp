#include "connector/sinks/common.h"

#include <algorithm>
#include <cctype>

namespace bf {

std::string check_sink_url(const std::string& url) {
  if (url.empty()) return "must be set";
  if (url.size() > 2048) return "longer than 2048 characters";
  if (std::any_of(url.begin(), url.end(), [](unsigned char c) { return c <= 0x20 || c >= 0x7f; }))
    return "must not contain spaces or control characters";
  size_t host = 0;
  if (url.rfind("https://", 0) == 0) host = 8;
  else if (url.rfind("http://", 0) == 0) host = 7;
  else return "must start with http:// or https://";
  if (host >= url.size() || url[host] == '/' || url[host] == ':' || url[host] == '?' || url[host] == '#')
    return "must name a host";
  if (url.find_first_of("?#") != std::string::npos)
    return "must not have a query or fragment (tokens belong in an environment variable the sink names)";
  const std::string authority = url.substr(host, url.find('/', host) - host);
  if (authority.find('@') != std::string::npos)
    return "must not hold credentials (name an environment variable instead)";
  return "";
}

std::string check_env_name(const std::string& name) {
  if (name.empty()) return "";
  if (name.size() > 128) return "longer than 128 characters";
  const bool ok = (std::isupper(static_cast<unsigned char>(name[0])) || name[0] == '_') &&
                  std::all_of(name.begin(), name.end(), [](unsigned char c) {
                    return std::isupper(c) || std::isdigit(c) || c == '_';
                  });
  return ok ? "" : "must be an environment variable name ([A-Z_][A-Z0-9_]*), not the secret itself";
}

std::string check_required(const std::string& value) { return value.empty() ? "must be set" : ""; }

}  // namespace bf
