// The expression compiler: a hand-written lexer and precedence-climbing parser that
// builds a tree of nodes; evaluation walks the tree (docs/pipelines.md, "Expressions").
#include "piper/expr/expr.h"

#include <re2/re2.h>

#include <boost/json/serialize.hpp>

#include <cctype>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>

#include "common/time.h"
#include "piper/expr/cidr.h"
#include "piper/time_format.h"

namespace bf {

ExprError::ExprError(int l, int c, const std::string& message)
    : PipelineError("line " + std::to_string(l) + ", column " + std::to_string(c) + ": " + message), line(l), column(c) {}

bool truthy(const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::null: return false;
    case boost::json::kind::bool_: return v.get_bool();
    case boost::json::kind::int64: return v.get_int64() != 0;
    case boost::json::kind::uint64: return v.get_uint64() != 0;
    case boost::json::kind::double_: return v.get_double() != 0;
    case boost::json::kind::string: return !v.get_string().empty();
    case boost::json::kind::array: return !v.get_array().empty();
    case boost::json::kind::object: return !v.get_object().empty();
  }
  return false;
}

namespace expr {

namespace json = boost::json;
const json::value kNull;

class Node {
 public:
  virtual ~Node() = default;
  virtual void eval(const Event& e, ExprValue& out) const = 0;
  int depth = 1;  // height of the subtree; bounded so evaluation cannot exhaust the stack
};
using NodePtr = std::unique_ptr<Node>;
constexpr int kMaxTreeDepth = 256;

// --- values -------------------------------------------------------------------

bool both_integral(const json::value& a, const json::value& b) {
  return (a.is_int64() || a.is_uint64()) && (b.is_int64() || b.is_uint64());
}

// -1, 0, 1; nullopt when the two are not ordered against each other.
std::optional<int> order(const json::value& a, const json::value& b) {
  if (a.is_number() && b.is_number()) {
    if (both_integral(a, b)) {
      if (a.is_int64() && b.is_int64()) return (a.get_int64() > b.get_int64()) - (a.get_int64() < b.get_int64());
      if (a.is_uint64() && b.is_uint64()) return (a.get_uint64() > b.get_uint64()) - (a.get_uint64() < b.get_uint64());
      if (a.is_int64()) return a.get_int64() < 0 ? -1 : -order(b, a).value();
      // a uint64, b int64
      if (b.get_int64() < 0) return 1;
      uint64_t bu = static_cast<uint64_t>(b.get_int64());
      return (a.get_uint64() > bu) - (a.get_uint64() < bu);
    }
    double x = a.to_number<double>(), y = b.to_number<double>();
    if (std::isnan(x) || std::isnan(y)) return std::nullopt;
    return (x > y) - (x < y);
  }
  if (a.is_string() && b.is_string()) {
    int c = a.get_string().subview().compare(b.get_string().subview());
    return (c > 0) - (c < 0);
  }
  if (a.is_bool() && b.is_bool()) return int(a.get_bool()) - int(b.get_bool());
  return std::nullopt;
}

bool equal(const json::value& a, const json::value& b) {
  if (a.is_number() && b.is_number()) return order(a, b) == 0;
  return a == b;
}

std::optional<std::string_view> as_string(const json::value& v) {
  if (v.is_string()) return std::string_view(v.get_string());
  return std::nullopt;
}

std::optional<int64_t> to_int(const json::value& v) {
  switch (v.kind()) {
    case json::kind::int64: return v.get_int64();
    case json::kind::uint64:
      if (v.get_uint64() > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
      return static_cast<int64_t>(v.get_uint64());
    case json::kind::double_: {
      double d = v.get_double();
      if (!std::isfinite(d) || d >= 9.2e18 || d <= -9.2e18) return std::nullopt;
      return static_cast<int64_t>(d);
    }
    case json::kind::bool_: return v.get_bool() ? 1 : 0;
    case json::kind::string: {
      std::string s(v.get_string());
      size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
      if (b == std::string::npos) return std::nullopt;
      s = s.substr(b, e - b + 1);
      char* end = nullptr;
      errno = 0;
      long long n = std::strtoll(s.c_str(), &end, 10);
      if (!*end && errno == 0) return n;
      double d = std::strtod(s.c_str(), &end);
      if (*end) return std::nullopt;
      return to_int(json::value(d));
    }
    default: return std::nullopt;
  }
}

std::optional<double> to_float(const json::value& v) {
  if (v.is_number()) return v.to_number<double>();
  if (v.is_bool()) return v.get_bool() ? 1.0 : 0.0;
  if (v.is_string()) {
    std::string s(v.get_string());
    size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
    if (b == std::string::npos) return std::nullopt;
    s = s.substr(b, e - b + 1);
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    if (*end || !std::isfinite(d)) return std::nullopt;
    return d;
  }
  return std::nullopt;
}

// --- nodes --------------------------------------------------------------------

class Literal final : public Node {
 public:
  explicit Literal(json::value v) : v_(std::move(v)) {}
  void eval(const Event&, ExprValue& out) const override { out.refer(&v_); }
  const json::value& value() const { return v_; }

 private:
  json::value v_;
};

struct PathSegment {
  std::string key;
  int64_t index = 0;
  bool is_index = false;
};

class Path final : public Node {
 public:
  explicit Path(std::vector<PathSegment> segs) : segs_(std::move(segs)) {}
  const json::value* find(const Event& e) const {
    const json::object* obj = &e;
    const json::value* cur = nullptr;
    for (const auto& s : segs_) {
      if (s.is_index) {
        if (!cur || !cur->is_array()) return nullptr;
        const auto& arr = cur->get_array();
        int64_t i = s.index < 0 ? static_cast<int64_t>(arr.size()) + s.index : s.index;
        if (i < 0 || i >= static_cast<int64_t>(arr.size())) return nullptr;
        cur = &arr[static_cast<size_t>(i)];
      } else {
        if (cur) {
          if (!cur->is_object()) return nullptr;
          obj = &cur->get_object();
        }
        auto it = obj->find(s.key);
        if (it == obj->end()) return nullptr;
        cur = &it->value();
      }
    }
    return cur;
  }
  void eval(const Event& e, ExprValue& out) const override {
    const json::value* v = find(e);
    out.refer(v ? v : &kNull);
  }

 private:
  std::vector<PathSegment> segs_;
};

class ListLiteral final : public Node {
 public:
  explicit ListLiteral(std::vector<NodePtr> items) : items_(std::move(items)) {
    for (const auto& i : items_) depth = std::max(depth, i->depth + 1);
  }
  void eval(const Event& e, ExprValue& out) const override {
    json::array arr;
    arr.reserve(items_.size());
    ExprValue v;
    for (const auto& i : items_) {
      i->eval(e, v);
      arr.push_back(v.take());
    }
    out.set(std::move(arr));
  }

 private:
  std::vector<NodePtr> items_;
};

class Unary final : public Node {
 public:
  Unary(char op, NodePtr arg) : op_(op), arg_(std::move(arg)) { depth = arg_->depth + 1; }
  void eval(const Event& e, ExprValue& out) const override {
    ExprValue v;
    arg_->eval(e, v);
    const json::value& x = v.get();
    if (op_ == '!') return out.set(!truthy(x));
    if (x.is_int64() && x.get_int64() != INT64_MIN) return out.set(-x.get_int64());
    if (x.is_number()) return out.set(-x.to_number<double>());
    out.set(nullptr);
  }

 private:
  char op_;
  NodePtr arg_;
};

enum class Op { or_, and_, eq, ne, lt, le, gt, ge, in, not_in, add, sub, mul, div, mod };

class Binary final : public Node {
 public:
  Binary(Op op, NodePtr l, NodePtr r) : op_(op), l_(std::move(l)), r_(std::move(r)) {
    depth = std::max(l_->depth, r_->depth) + 1;
  }
  void eval(const Event& e, ExprValue& out) const override {
    ExprValue a, b;
    l_->eval(e, a);
    if (op_ == Op::and_ || op_ == Op::or_) {
      bool left = truthy(a.get());
      if (op_ == Op::and_ ? !left : left) return out.set(left);
      r_->eval(e, b);
      return out.set(truthy(b.get()));
    }
    r_->eval(e, b);
    const json::value &x = a.get(), &y = b.get();
    switch (op_) {
      case Op::eq: return out.set(equal(x, y));
      case Op::ne: return out.set(!equal(x, y));
      case Op::lt: { auto o = order(x, y); return out.set(o && *o < 0); }
      case Op::le: { auto o = order(x, y); return out.set(o && *o <= 0); }
      case Op::gt: { auto o = order(x, y); return out.set(o && *o > 0); }
      case Op::ge: { auto o = order(x, y); return out.set(o && *o >= 0); }
      case Op::in: return out.set(member(x, y));
      case Op::not_in: return out.set(!member(x, y));
      default: return arith(x, y, out);
    }
  }

 private:
  static bool member(const json::value& x, const json::value& y) {
    if (y.is_array()) {
      for (const auto& item : y.get_array())
        if (equal(x, item)) return true;
      return false;
    }
    if (y.is_string() && x.is_string()) return y.get_string().subview().find(x.get_string().subview()) != std::string_view::npos;
    if (y.is_object() && x.is_string()) return y.get_object().contains(x.get_string());
    return false;
  }
  void arith(const json::value& x, const json::value& y, ExprValue& out) const {
    if (op_ == Op::add && x.is_string() && y.is_string()) {
      json::string s = x.get_string();
      s.append(y.get_string());
      return out.set(std::move(s));
    }
    if (!x.is_number() || !y.is_number()) return out.set(nullptr);
    auto xi = both_integral(x, y) ? to_int(x) : std::nullopt;
    auto yi = xi ? to_int(y) : std::nullopt;
    if (xi && yi) {
      int64_t r;
      bool overflow = false;
      switch (op_) {
        case Op::add: overflow = __builtin_add_overflow(*xi, *yi, &r); break;
        case Op::sub: overflow = __builtin_sub_overflow(*xi, *yi, &r); break;
        case Op::mul: overflow = __builtin_mul_overflow(*xi, *yi, &r); break;
        case Op::div:
        case Op::mod:
          if (*yi == 0 || (*xi == INT64_MIN && *yi == -1)) return out.set(nullptr);
          r = op_ == Op::div ? *xi / *yi : *xi % *yi;
          break;
        default: return out.set(nullptr);
      }
      if (!overflow) return out.set(r);
    }
    double a = x.to_number<double>(), b = y.to_number<double>(), r;
    switch (op_) {
      case Op::add: r = a + b; break;
      case Op::sub: r = a - b; break;
      case Op::mul: r = a * b; break;
      case Op::div: if (b == 0) return out.set(nullptr); r = a / b; break;
      case Op::mod: if (b == 0) return out.set(nullptr); r = std::fmod(a, b); break;
      default: return out.set(nullptr);
    }
    if (!std::isfinite(r)) return out.set(nullptr);
    out.set(r);
  }
  Op op_;
  NodePtr l_, r_;
};

class RegexMatch final : public Node {
 public:
  RegexMatch(NodePtr arg, std::unique_ptr<RE2> re, bool negate) : arg_(std::move(arg)), re_(std::move(re)), negate_(negate) {
    depth = arg_->depth + 1;
  }
  void eval(const Event& e, ExprValue& out) const override {
    ExprValue v;
    arg_->eval(e, v);
    auto s = as_string(v.get());
    bool m = s && RE2::PartialMatch(*s, *re_);
    out.set(s ? m != negate_ : false);
  }

 private:
  NodePtr arg_;
  std::unique_ptr<RE2> re_;
  bool negate_;
};

class Exists final : public Node {
 public:
  explicit Exists(std::unique_ptr<Path> p) : path_(std::move(p)) { depth = 2; }
  void eval(const Event& e, ExprValue& out) const override { out.set(path_->find(e) != nullptr); }

 private:
  std::unique_ptr<Path> path_;
};

class CidrMatch final : public Node {
 public:
  CidrMatch(NodePtr arg, std::vector<CidrNetwork> nets) : arg_(std::move(arg)), nets_(std::move(nets)) {
    depth = arg_->depth + 1;
  }
  void eval(const Event& e, ExprValue& out) const override {
    ExprValue v;
    arg_->eval(e, v);
    auto s = as_string(v.get());
    std::optional<IpAddress> ip = s ? IpAddress::parse(*s) : std::nullopt;
    bool hit = false;
    for (const auto& n : nets_) hit = hit || (ip && n.contains(*ip));
    out.set(hit);
  }

 private:
  NodePtr arg_;
  std::vector<CidrNetwork> nets_;
};

class ParseTime final : public Node {
 public:
  ParseTime(NodePtr arg, TimeFormat f, std::shared_ptr<const TimeZone> z) : arg_(std::move(arg)), format_(std::move(f)), zone_(std::move(z)) {
    depth = arg_->depth + 1;
  }
  void eval(const Event& e, ExprValue& out) const override {
    ExprValue v;
    arg_->eval(e, v);
    auto t = format_.parse(v.get(), *zone_);
    if (t) out.set(*t);
    else out.set(nullptr);
  }

 private:
  NodePtr arg_;
  TimeFormat format_;
  std::shared_ptr<const TimeZone> zone_;
};

// A plain function: its arguments evaluated, then one C++ function on their values.
using Builtin = void (*)(ExprValue* args, size_t n, ExprValue& out);
class Call final : public Node {
 public:
  Call(Builtin fn, std::vector<NodePtr> args) : fn_(fn), args_(std::move(args)) {
    for (const auto& a : args_) depth = std::max(depth, a->depth + 1);
  }
  void eval(const Event& e, ExprValue& out) const override {
    ExprValue vals[4];
    for (size_t i = 0; i < args_.size(); ++i) args_[i]->eval(e, vals[i]);
    fn_(vals, args_.size(), out);
  }

 private:
  Builtin fn_;
  std::vector<NodePtr> args_;  // at most 4
};

void map_string(const ExprValue& a, ExprValue& out, int (*f)(int)) {
  auto s = as_string(a.get());
  if (!s) return out.set(nullptr);
  json::string r(*s);
  for (char& c : r) c = static_cast<char>(f(static_cast<unsigned char>(c)));
  out.set(std::move(r));
}

struct BuiltinInfo {
  Builtin fn;
  size_t min_args, max_args;
};

const std::map<std::string, BuiltinInfo, std::less<>>& builtins() {
  static const std::map<std::string, BuiltinInfo, std::less<>> table{
      {"lower", {[](ExprValue* a, size_t, ExprValue& o) { map_string(a[0], o, ::tolower); }, 1, 1}},
      {"upper", {[](ExprValue* a, size_t, ExprValue& o) { map_string(a[0], o, ::toupper); }, 1, 1}},
      {"len", {[](ExprValue* a, size_t, ExprValue& o) {
         const json::value& v = a[0].get();
         if (v.is_string()) {
           int64_t n = 0;  // code points: bytes that do not continue a UTF-8 sequence
           for (unsigned char c : v.get_string()) n += (c & 0xC0) != 0x80;
           return o.set(n);
         }
         if (v.is_array()) return o.set(static_cast<int64_t>(v.get_array().size()));
         if (v.is_object()) return o.set(static_cast<int64_t>(v.get_object().size()));
         o.set(nullptr);
       }, 1, 1}},
      {"starts_with", {[](ExprValue* a, size_t, ExprValue& o) {
         auto s = as_string(a[0].get()), p = as_string(a[1].get());
         o.set(s && p && s->substr(0, p->size()) == *p);
       }, 2, 2}},
      {"ends_with", {[](ExprValue* a, size_t, ExprValue& o) {
         auto s = as_string(a[0].get()), p = as_string(a[1].get());
         o.set(s && p && s->size() >= p->size() && s->substr(s->size() - p->size()) == *p);
       }, 2, 2}},
      {"contains", {[](ExprValue* a, size_t, ExprValue& o) {
         const json::value &h = a[0].get(), &n = a[1].get();
         if (h.is_array()) {
           for (const auto& item : h.get_array())
             if (equal(item, n)) return o.set(true);
           return o.set(false);
         }
         auto s = as_string(h), p = as_string(n);
         o.set(s && p && s->find(*p) != std::string_view::npos);
       }, 2, 2}},
      {"to_int", {[](ExprValue* a, size_t, ExprValue& o) {
         auto v = to_int(a[0].get());
         if (v) o.set(*v);
         else o.set(nullptr);
       }, 1, 1}},
      {"to_float", {[](ExprValue* a, size_t, ExprValue& o) {
         auto v = to_float(a[0].get());
         if (v) o.set(*v);
         else o.set(nullptr);
       }, 1, 1}},
      {"to_string", {[](ExprValue* a, size_t, ExprValue& o) {
         const json::value& v = a[0].get();
         if (v.is_string() || v.is_null()) {
           o = std::move(a[0]);
           return;
         }
         o.set(json::string(json::serialize(v)));
       }, 1, 1}},
      {"coalesce", {[](ExprValue* a, size_t n, ExprValue& o) {
         for (size_t i = 0; i < n; ++i)
           if (!a[i].get().is_null()) {
             o = std::move(a[i]);
             return;
           }
         o.set(nullptr);
       }, 1, 4}},
      {"now", {[](ExprValue*, size_t, ExprValue& o) { o.set(now_us()); }, 0, 0}},
  };
  return table;
}

// --- lexer --------------------------------------------------------------------

enum class Tok { end, ident, quoted_ident, number, string, op, lparen, rparen, lbracket, rbracket, comma, dot };

struct Token {
  Tok kind = Tok::end;
  std::string text;  // identifier, operator, or the decoded string
  json::value number;
  size_t offset = 0;
};

class Parser {
 public:
  explicit Parser(std::string_view src) : src_(src) {}

  NodePtr parse() {
    if (src_.size() > kMaxSourceBytes) fail(0, "expression longer than " + std::to_string(kMaxSourceBytes) + " bytes");
    next();
    if (tok_.kind == Tok::end) fail(tok_.offset, "empty expression");
    NodePtr n = parse_or();
    if (tok_.kind != Tok::end) fail(tok_.offset, "unexpected " + describe(tok_));
    return n;
  }

 private:
  [[noreturn]] void fail(size_t offset, const std::string& msg) const {
    int line = 1, col = 1;
    for (size_t i = 0; i < offset && i < src_.size(); ++i) {
      if (src_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    throw ExprError(line, col, msg);
  }
  static std::string describe(const Token& t) {
    switch (t.kind) {
      case Tok::end: return "end of expression";
      case Tok::string: return "string \"" + t.text + "\"";
      case Tok::number: return "number";
      case Tok::ident: case Tok::quoted_ident: return "name '" + t.text + "'";
      default: return "'" + t.text + "'";
    }
  }

  void next() {
    size_t& p = pos_;
    while (p < src_.size() && std::isspace(static_cast<unsigned char>(src_[p]))) ++p;
    tok_ = Token{};
    tok_.offset = p;
    if (p >= src_.size()) return;
    char c = src_[p];
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == '@') {
      size_t s = p;
      while (p < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[p])) || src_[p] == '_' || src_[p] == '@')) ++p;
      tok_.kind = Tok::ident;
      tok_.text = src_.substr(s, p - s);
      return;
    }
    if (std::isdigit(static_cast<unsigned char>(c))) return lex_number();
    if (c == '"' || c == '\'' || c == '`') {
      tok_.kind = c == '`' ? Tok::quoted_ident : Tok::string;
      tok_.text = lex_string(c);
      return;
    }
    static const char* const kOps[] = {"==", "!=", "<=", ">=", "&&", "||", "=~", "!~", "<", ">", "!", "+", "-", "*", "/", "%"};
    for (const char* op : kOps) {
      size_t n = std::strlen(op);
      if (src_.compare(p, n, op) == 0) {
        tok_.kind = Tok::op;
        tok_.text = op;
        p += n;
        return;
      }
    }
    tok_.text = std::string(1, c);
    ++p;
    switch (c) {
      case '(': tok_.kind = Tok::lparen; return;
      case ')': tok_.kind = Tok::rparen; return;
      case '[': tok_.kind = Tok::lbracket; return;
      case ']': tok_.kind = Tok::rbracket; return;
      case ',': tok_.kind = Tok::comma; return;
      case '.': tok_.kind = Tok::dot; return;
      case '=': fail(p - 1, "'=' is not an operator (use '==' to compare)");
      case '&': fail(p - 1, "'&' is not an operator (use '&&')");
      case '|': fail(p - 1, "'|' is not an operator (use '||')");
      default: fail(p - 1, "unexpected character '" + (std::isprint(static_cast<unsigned char>(c)) ? std::string(1, c) : "\\x" + std::to_string(static_cast<unsigned char>(c))) + "'");
    }
  }

  void lex_number() {
    size_t s = pos_;
    bool is_float = false;
    while (pos_ < src_.size() && std::isdigit(static_cast<unsigned char>(src_[pos_]))) ++pos_;
    if (pos_ + 1 < src_.size() && src_[pos_] == '.' && std::isdigit(static_cast<unsigned char>(src_[pos_ + 1]))) {
      is_float = true;
      ++pos_;
      while (pos_ < src_.size() && std::isdigit(static_cast<unsigned char>(src_[pos_]))) ++pos_;
    }
    if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
      size_t save = pos_++;
      if (pos_ < src_.size() && (src_[pos_] == '+' || src_[pos_] == '-')) ++pos_;
      if (pos_ < src_.size() && std::isdigit(static_cast<unsigned char>(src_[pos_]))) {
        is_float = true;
        while (pos_ < src_.size() && std::isdigit(static_cast<unsigned char>(src_[pos_]))) ++pos_;
      } else {
        pos_ = save;
      }
    }
    std::string text(src_.substr(s, pos_ - s));
    tok_.kind = Tok::number;
    tok_.text = text;
    if (!is_float) {
      errno = 0;
      long long v = std::strtoll(text.c_str(), nullptr, 10);
      if (errno == 0) {
        tok_.number = static_cast<int64_t>(v);
        return;
      }
    }
    double d = std::strtod(text.c_str(), nullptr);
    if (!std::isfinite(d)) fail(s, "number out of range");
    tok_.number = d;
  }

  std::string lex_string(char quote) {
    size_t start = pos_++;
    std::string out;
    while (true) {
      if (pos_ >= src_.size()) fail(start, "unterminated string");
      char c = src_[pos_++];
      if (c == quote) return out;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= src_.size()) fail(start, "unterminated string");
      char e = src_[pos_++];
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case '0': out += '\0'; break;
        case '\\': case '"': case '\'': case '`': out += e; break;
        default:
          // Unknown escapes stay as written, so regexes read naturally: "\d+" is \d+.
          out += '\\';
          out += e;
      }
    }
  }

  bool is_op(const char* op) const { return tok_.kind == Tok::op && tok_.text == op; }
  bool is_word(const char* w) const { return tok_.kind == Tok::ident && tok_.text == w; }

  NodePtr check_depth(NodePtr n, size_t offset) {
    if (n->depth > kMaxTreeDepth) fail(offset, "expression nested deeper than " + std::to_string(kMaxTreeDepth) + " levels");
    return n;
  }
  NodePtr binary(Op op, NodePtr l, NodePtr r, size_t offset) {
    return check_depth(std::make_unique<Binary>(op, std::move(l), std::move(r)), offset);
  }

  NodePtr parse_or() {
    NodePtr l = parse_and();
    while (is_op("||") || is_word("or")) {
      size_t at = tok_.offset;
      next();
      l = binary(Op::or_, std::move(l), parse_and(), at);
    }
    return l;
  }
  NodePtr parse_and() {
    NodePtr l = parse_compare();
    while (is_op("&&") || is_word("and")) {
      size_t at = tok_.offset;
      next();
      l = binary(Op::and_, std::move(l), parse_compare(), at);
    }
    return l;
  }
  NodePtr parse_compare() {
    NodePtr l = parse_additive();
    static const std::map<std::string, Op> kCompare{{"==", Op::eq}, {"!=", Op::ne}, {"<", Op::lt},
                                                    {"<=", Op::le}, {">", Op::gt},  {">=", Op::ge}};
    size_t at = tok_.offset;
    if (tok_.kind == Tok::op && kCompare.count(tok_.text)) {
      Op op = kCompare.at(tok_.text);
      next();
      l = binary(op, std::move(l), parse_additive(), at);
    } else if (is_op("=~") || is_op("!~")) {
      bool negate = tok_.text == "!~";
      next();
      if (tok_.kind != Tok::string) fail(tok_.offset, "the right side of =~ must be a string literal (the regex)");
      auto re = compile_regex(tok_.text, tok_.offset);
      next();
      l = check_depth(std::make_unique<RegexMatch>(std::move(l), std::move(re), negate), at);
    } else if (is_word("in")) {
      next();
      l = binary(Op::in, std::move(l), parse_additive(), at);
    } else if (is_word("not")) {
      next();
      if (!is_word("in")) fail(tok_.offset, "expected 'in' after 'not'");
      next();
      l = binary(Op::not_in, std::move(l), parse_additive(), at);
    } else {
      return l;
    }
    if (tok_.kind == Tok::op && (kCompare.count(tok_.text) || tok_.text == "=~" || tok_.text == "!~"))
      fail(tok_.offset, "comparisons do not chain; use parentheses or &&");
    return l;
  }
  NodePtr parse_additive() {
    NodePtr l = parse_multiplicative();
    while (is_op("+") || is_op("-")) {
      Op op = tok_.text == "+" ? Op::add : Op::sub;
      size_t at = tok_.offset;
      next();
      l = binary(op, std::move(l), parse_multiplicative(), at);
    }
    return l;
  }
  NodePtr parse_multiplicative() {
    NodePtr l = parse_unary();
    while (is_op("*") || is_op("/") || is_op("%")) {
      Op op = tok_.text == "*" ? Op::mul : tok_.text == "/" ? Op::div : Op::mod;
      size_t at = tok_.offset;
      next();
      l = binary(op, std::move(l), parse_unary(), at);
    }
    return l;
  }

  // Every recursion of the grammar passes through here, so this bounds the parser's stack.
  struct DepthGuard {
    Parser& p;
    DepthGuard(Parser& parser, size_t offset) : p(parser) {
      if (++p.nesting_ > kMaxDepth) p.fail(offset, "expression nested deeper than " + std::to_string(kMaxDepth) + " levels");
    }
    ~DepthGuard() { --p.nesting_; }
  };

  NodePtr parse_unary() {
    DepthGuard guard(*this, tok_.offset);
    size_t at = tok_.offset;
    if (is_op("!") || is_word("not")) {
      next();
      return check_depth(std::make_unique<Unary>('!', parse_unary()), at);
    }
    if (is_op("-")) {
      next();
      if (tok_.kind == Tok::number) {  // a negative literal, folded
        json::value v = tok_.number.is_int64() ? json::value(-tok_.number.get_int64()) : json::value(-tok_.number.get_double());
        next();
        return std::make_unique<Literal>(std::move(v));
      }
      return check_depth(std::make_unique<Unary>('-', parse_unary()), at);
    }
    return parse_primary();
  }

  NodePtr parse_primary() {
    size_t at = tok_.offset;
    switch (tok_.kind) {
      case Tok::number: {
        json::value v = tok_.number;
        next();
        return std::make_unique<Literal>(std::move(v));
      }
      case Tok::string: {
        json::value v = json::string(tok_.text);
        next();
        return std::make_unique<Literal>(std::move(v));
      }
      case Tok::lparen: {
        next();
        NodePtr n = parse_or();
        expect(Tok::rparen, "')'");
        return n;
      }
      case Tok::lbracket: {
        next();
        std::vector<NodePtr> items;
        if (tok_.kind != Tok::rbracket) {
          while (true) {
            items.push_back(parse_or());
            if (tok_.kind != Tok::comma) break;
            next();
          }
        }
        expect(Tok::rbracket, "']' or ','");
        // A list of literals is one literal, built once.
        bool constant = true;
        for (const auto& i : items) constant = constant && dynamic_cast<const Literal*>(i.get());
        if (constant) {
          json::array arr;
          for (const auto& i : items) arr.push_back(static_cast<const Literal*>(i.get())->value());
          return std::make_unique<Literal>(std::move(arr));
        }
        return check_depth(std::make_unique<ListLiteral>(std::move(items)), at);
      }
      case Tok::ident: {
        std::string name = tok_.text;
        if (name == "true" || name == "false" || name == "null") {
          next();
          return std::make_unique<Literal>(name == "null" ? json::value(nullptr) : json::value(name == "true"));
        }
        if (peek_is('(')) return parse_call();
        return parse_path();
      }
      case Tok::quoted_ident: return parse_path();
      default: fail(at, "expected a value, found " + describe(tok_));
    }
  }

  bool peek_is(char c) const {
    size_t p = pos_;
    while (p < src_.size() && std::isspace(static_cast<unsigned char>(src_[p]))) ++p;
    return p < src_.size() && src_[p] == c;
  }

  void expect(Tok kind, const char* what) {
    if (tok_.kind != kind) fail(tok_.offset, "expected " + std::string(what) + ", found " + describe(tok_));
    next();
  }

  std::unique_ptr<Path> parse_path() {
    std::vector<PathSegment> segs;
    segs.push_back({tok_.text});
    next();
    while (true) {
      if (tok_.kind == Tok::dot) {
        next();
        if (tok_.kind != Tok::ident && tok_.kind != Tok::quoted_ident && tok_.kind != Tok::string)
          fail(tok_.offset, "expected a field name after '.'");
        segs.push_back({tok_.text});
        next();
      } else if (tok_.kind == Tok::lbracket) {
        next();
        PathSegment s;
        bool neg = false;
        if (is_op("-")) {
          neg = true;
          next();
        }
        if (tok_.kind == Tok::number && tok_.number.is_int64()) {
          s.is_index = true;
          s.index = neg ? -tok_.number.get_int64() : tok_.number.get_int64();
        } else if (tok_.kind == Tok::string && !neg) {
          s.key = tok_.text;
        } else {
          fail(tok_.offset, "expected an integer index or a quoted field name in '[ ]'");
        }
        next();
        expect(Tok::rbracket, "']'");
        segs.push_back(std::move(s));
      } else {
        break;
      }
    }
    return std::make_unique<Path>(std::move(segs));
  }

  std::string literal_string_arg(const std::string& fn, size_t index) {
    if (tok_.kind != Tok::string)
      fail(tok_.offset, fn + "(): argument " + std::to_string(index) + " must be a string literal");
    std::string s = tok_.text;
    next();
    return s;
  }

  std::unique_ptr<RE2> compile_regex(const std::string& pattern, size_t offset) {
    RE2::Options opts;
    opts.set_log_errors(false);
    auto re = std::make_unique<RE2>(pattern, opts);
    if (!re->ok()) fail(offset, "invalid regex: " + re->error());
    return re;
  }

  NodePtr parse_call() {
    std::string name = tok_.text;
    size_t at = tok_.offset;
    next();  // name
    next();  // (
    auto close = [&] { expect(Tok::rparen, "')' or ','"); };
    auto comma = [&] { expect(Tok::comma, "','"); };
    if (name == "exists") {
      if (tok_.kind != Tok::ident && tok_.kind != Tok::quoted_ident) fail(tok_.offset, "exists() takes a field path");
      auto p = parse_path();
      close();
      return std::make_unique<Exists>(std::move(p));
    }
    if (name == "cidr_match") {
      NodePtr ip = parse_or();
      std::vector<CidrNetwork> nets;
      while (tok_.kind == Tok::comma) {
        next();
        size_t off = tok_.offset;
        std::string text = literal_string_arg(name, nets.size() + 2);
        auto net = CidrNetwork::parse(text);
        if (!net) fail(off, "cidr_match(): '" + text + "' is not an IPv4 or IPv6 network");
        nets.push_back(*net);
      }
      if (nets.empty()) fail(tok_.offset, "cidr_match() needs at least one network, e.g. cidr_match(ip, \"10.0.0.0/8\")");
      close();
      return check_depth(std::make_unique<CidrMatch>(std::move(ip), std::move(nets)), at);
    }
    if (name == "parse_time") {
      NodePtr arg = parse_or();
      std::string format = "auto", zone = "UTC";
      try {
        if (tok_.kind == Tok::comma) {
          next();
          format = literal_string_arg(name, 2);
          if (tok_.kind == Tok::comma) {
            next();
            zone = literal_string_arg(name, 3);
          }
        }
        close();
        return check_depth(std::make_unique<ParseTime>(std::move(arg), TimeFormat::compile(format), load_time_zone(zone)), at);
      } catch (const ExprError&) {
        throw;
      } catch (const PipelineError& e) {
        fail(at, std::string("parse_time(): ") + e.what());
      }
    }
    auto it = builtins().find(name);
    if (it == builtins().end()) {
      std::string known = "exists, cidr_match, parse_time";
      for (const auto& [n, _] : builtins()) known += ", " + n;
      fail(at, "unknown function '" + name + "' (known: " + known + ")");
    }
    std::vector<NodePtr> args;
    if (tok_.kind != Tok::rparen) {
      while (true) {
        args.push_back(parse_or());
        if (tok_.kind != Tok::comma) break;
        next();
      }
    }
    close();
    const BuiltinInfo& info = it->second;
    if (args.size() < info.min_args || args.size() > info.max_args) {
      std::string want = info.min_args == info.max_args ? std::to_string(info.min_args)
                                                        : std::to_string(info.min_args) + " to " + std::to_string(info.max_args);
      fail(at, name + "() takes " + want + " argument" + (info.max_args == 1 ? "" : "s") + ", not " + std::to_string(args.size()));
    }
    (void)comma;
    return check_depth(std::make_unique<Call>(info.fn, std::move(args)), at);
  }

  std::string_view src_;
  size_t pos_ = 0;
  Token tok_;
  int nesting_ = 0;
};

}  // namespace expr

std::optional<int64_t> value_to_int(const boost::json::value& v) { return expr::to_int(v); }
std::optional<double> value_to_float(const boost::json::value& v) { return expr::to_float(v); }

Expr Expr::compile(std::string_view source) {
  Expr e;
  e.source_ = std::string(source);
  e.root_ = expr::Parser(e.source_).parse();
  return e;
}

void Expr::eval(const Event& event, ExprValue& out) const { root_->eval(event, out); }

boost::json::value Expr::value(const Event& event) const {
  ExprValue v;
  root_->eval(event, v);
  return v.take();
}

bool Expr::test(const Event& event) const {
  ExprValue v;
  root_->eval(event, v);
  return truthy(v.get());
}

}  // namespace bf
