#include "query/nl/provider.h"

#include <boost/json.hpp>

#include <chrono>

#include "net/http_client.h"

namespace bf::nl {

std::unique_ptr<Provider> make_provider(const AiConfig& config) {
  if (config.provider == "openai") return make_openai_provider(config);
  if (config.provider == "anthropic") return make_anthropic_provider(config);
  throw std::invalid_argument("unknown AI provider '" + config.provider + "' (openai or anthropic)");
}

namespace detail {

std::string redact(std::string text, const std::string& secret) {
  if (secret.empty()) return text;
  for (size_t pos = 0; (pos = text.find(secret, pos)) != std::string::npos;) {
    text.replace(pos, secret.size(), "[redacted]");
    pos += 10;
  }
  return text;
}

std::string error_message_of(const std::string& body) {
  boost::system::error_code ec;
  auto doc = boost::json::parse(body, ec);
  if (!ec && doc.is_object()) {
    const auto& o = doc.get_object();
    if (auto* e = o.if_contains("error")) {
      if (e->is_string()) return std::string(e->get_string());
      if (e->is_object()) {
        if (auto* m = e->get_object().if_contains("message"); m && m->is_string()) return std::string(m->get_string());
      }
    }
    if (auto* m = o.if_contains("message"); m && m->is_string()) return std::string(m->get_string());
  }
  std::string raw = body.substr(0, 200);
  for (char& c : raw)
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  return raw.empty() ? "(empty body)" : raw;
}

std::string post_json(const AiConfig& config, const std::string& who, const std::string& url,
                      const std::vector<std::pair<std::string, std::string>>& headers, const std::string& body) {
  HttpClientOptions o;
  o.timeout = config.timeout;
  o.connect_timeout = std::min(config.timeout, std::chrono::milliseconds(5000));
  o.max_retries = 0;
  HttpClient client(o);
  Headers h{{"Content-Type", "application/json"}, {"Accept", "application/json"}};
  for (const auto& [k, v] : headers) h[k] = v;
  const auto start = std::chrono::steady_clock::now();
  HttpResult r;
  try {
    r = client.send("POST", url, h, body);
  } catch (const HttpTransportError& e) {
    const std::string what = redact(e.what(), config.api_key);
    const bool timed_out = what.find("Timeout was reached") != std::string::npos ||
                           std::chrono::steady_clock::now() - start >= config.timeout;
    if (timed_out)
      throw ProviderError(504, "the AI provider " + who + " did not answer within " +
                                   std::to_string(config.timeout.count()) + " ms (ai.timeout)");
    throw ProviderError(502, "cannot reach the AI provider " + who + ": " + what);
  }
  if (r.status == 200) return std::move(r.body);
  const std::string message = redact(error_message_of(r.body), config.api_key);
  if (r.status == 401 || r.status == 403)
    throw ProviderError(502, "the AI provider refused the key: " + who + " answered HTTP " +
                                 std::to_string(r.status) + ": " + message);
  throw ProviderError(502, "the AI provider " + who + " answered HTTP " + std::to_string(r.status) + ": " + message);
}

}  // namespace detail
}  // namespace bf::nl
