#pragma once
// An account's own AI model for natural-language questions (docs/ask.md),
// from the `ai:` section of an account in the accounts config:
//
//   accounts:
//     - id: acme
//       ai:
//         provider: openai            # openai (any chat-completions API) | anthropic
//         endpoint: http://127.0.0.1:11434/v1
//         model: qwen2.5-coder:7b
//         api_key_env: ACME_AI_KEY    # or api_key: "..."; neither: no key is sent
//         timeout: 30s
//         share_sample_values: false  # true: a few distinct values of low-cardinality columns go to the model
#include <chrono>
#include <cstdint>
#include <string>

namespace bf {

class ConfigNode;

struct AiConfig {
  std::string provider;  // "openai" | "anthropic"
  std::string endpoint;  // base URL without a trailing '/'
  std::string model;
  std::string api_key;   // never logged or returned
  std::chrono::milliseconds timeout{30000};
  bool share_sample_values = false;
  int64_t max_tokens = 1024;
};

// Reads the section (every key it knows; unknown keys are left for check_unknown).
// api_key_env is resolved here: an unset variable is a config error naming it.
AiConfig parse_ai_config(const ConfigNode& section);

}  // namespace bf
