// Any OpenAI-compatible chat-completions API: OpenAI, vLLM, Ollama (/v1), LM Studio,
// llama.cpp server. POST {endpoint}/chat/completions with `Authorization: Bearer`;
// the answer is choices[0].message.content.
#include <boost/json.hpp>

#include "query/nl/provider.h"

namespace bf::nl {
namespace {

class OpenAiProvider final : public Provider {
 public:
  explicit OpenAiProvider(AiConfig config) : config_(std::move(config)) {}

  std::string describe() const override {
    return "openai (" + config_.endpoint + ", model " + config_.model + ")";
  }
  const AiConfig& config() const override { return config_; }

  std::string complete(const ChatRequest& request) override {
    boost::json::array messages;
    if (!request.system.empty()) messages.push_back(boost::json::object{{"role", "system"}, {"content", request.system}});
    for (const auto& m : request.messages) messages.push_back(boost::json::object{{"role", m.role}, {"content", m.content}});
    boost::json::object body{{"model", config_.model},
                             {"messages", std::move(messages)},
                             {"temperature", 0},
                             {"max_tokens", config_.max_tokens},
                             {"stream", false}};
    std::vector<std::pair<std::string, std::string>> headers;
    if (!config_.api_key.empty()) headers.emplace_back("Authorization", "Bearer " + config_.api_key);
    const std::string who = describe();
    const std::string reply =
        detail::post_json(config_, who, config_.endpoint + "/chat/completions", headers, boost::json::serialize(body));
    boost::system::error_code ec;
    auto doc = boost::json::parse(reply, ec);
    if (ec || !doc.is_object()) throw ProviderError(502, "the AI provider " + who + " sent a response that is not JSON");
    auto* choices = doc.get_object().if_contains("choices");
    if (!choices || !choices->is_array() || choices->get_array().empty() || !choices->get_array()[0].is_object())
      throw ProviderError(502, "the AI provider " + who + " sent a response without choices[0]");
    auto* message = choices->get_array()[0].get_object().if_contains("message");
    const boost::json::value* content = message && message->is_object() ? message->get_object().if_contains("content") : nullptr;
    if (!content || !content->is_string())
      throw ProviderError(502, "the AI provider " + who + " sent a response without choices[0].message.content");
    return std::string(content->get_string());
  }

 private:
  AiConfig config_;
};

}  // namespace

std::unique_ptr<Provider> make_openai_provider(const AiConfig& config) { return std::make_unique<OpenAiProvider>(config); }

}  // namespace bf::nl
