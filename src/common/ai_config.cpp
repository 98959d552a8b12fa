#include "common/ai_config.h"

#include <cstdlib>

#include "common/config.h"

namespace bf {

AiConfig parse_ai_config(const ConfigNode& s) {
  AiConfig c;
  c.provider = s.str("provider");
  if (c.provider != "openai" && c.provider != "anthropic")
    s.fail("provider", "must be 'openai' (any OpenAI-compatible chat-completions API) or 'anthropic', got '" +
                           c.provider + "'");
  c.endpoint = s.str("endpoint");
  if (c.endpoint.rfind("http://", 0) != 0 && c.endpoint.rfind("https://", 0) != 0)
    s.fail("endpoint", "must be an http:// or https:// URL, got '" + c.endpoint + "'");
  while (!c.endpoint.empty() && c.endpoint.back() == '/') c.endpoint.pop_back();
  c.model = s.str("model");
  if (c.model.empty()) s.fail("model", "must not be empty");
  const bool has_key = s.has("api_key"), has_env = s.has("api_key_env");
  if (has_key && has_env) s.fail("api_key", "set api_key or api_key_env, not both");
  if (has_key) c.api_key = s.str("api_key");
  if (has_env) {
    const std::string var = s.str("api_key_env");
    const char* value = var.empty() ? nullptr : std::getenv(var.c_str());
    if (!value || !*value) s.fail("api_key_env", "environment variable '" + var + "' is not set");
    c.api_key = value;
  }
  c.timeout = s.duration("timeout", c.timeout);
  if (c.timeout.count() <= 0) s.fail("timeout", "must be > 0");
  c.share_sample_values = s.boolean("share_sample_values", false);
  c.max_tokens = s.integer("max_tokens", c.max_tokens);
  if (c.max_tokens < 64 || c.max_tokens > 65536) s.fail("max_tokens", "must be between 64 and 65536");
  return c;
}

}  // namespace bf
