#pragma once
// LLM providers for natural-language questions (docs/ask.md). One file per
// provider kind (openai_provider.cpp, anthropic_provider.cpp) behind this small
// interface; make_provider() is the one table that knows them all.
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/ai_config.h"

namespace bf::nl {

struct ChatMessage {
  std::string role;  // "user" | "assistant"
  std::string content;
};

struct ChatRequest {
  std::string system;                 // instructions and the dataset's schema
  std::vector<ChatMessage> messages;  // the question (and, on a repair, the exchange so far)
};

// The provider could not give an answer. status is what the ask endpoint answers
// with: 504 on a timeout, 502 otherwise. The message names the provider and never
// holds the api key.
struct ProviderError : std::runtime_error {
  int status;
  ProviderError(int status, const std::string& message) : std::runtime_error(message), status(status) {}
};

class Provider {
 public:
  virtual ~Provider() = default;
  // The model's reply text. Throws ProviderError.
  virtual std::string complete(const ChatRequest& request) = 0;
  // "openai (http://host/v1, model m)": for messages; no secrets.
  virtual std::string describe() const = 0;
  virtual const AiConfig& config() const = 0;
};

std::unique_ptr<Provider> make_provider(const AiConfig& config);

// Shared by the providers.
namespace detail {
// `text` with every occurrence of `secret` (if non-empty) replaced by "[redacted]".
std::string redact(std::string text, const std::string& secret);
// POSTs a JSON body and maps transport failures and HTTP errors to ProviderError;
// returns the 200 body. `error_message` extracts a provider's error text from a body.
std::string post_json(const AiConfig& config, const std::string& who, const std::string& url,
                      const std::vector<std::pair<std::string, std::string>>& headers, const std::string& body);
// The message of an error body: {"error": {"message": ...}} (OpenAI, Anthropic),
// {"error": "..."} (Ollama, llama.cpp), or a short prefix of the raw body.
std::string error_message_of(const std::string& body);
}  // namespace detail

std::unique_ptr<Provider> make_openai_provider(const AiConfig& config);
std::unique_ptr<Provider> make_anthropic_provider(const AiConfig& config);

}  // namespace bf::nl
