// Router and request/response types, without sockets.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "net/http.h"
#include "net/http_server.h"

namespace bf {
namespace {

HttpRequest make(const std::string& method, const std::string& target) {
  HttpRequest r;
  r.method = method;
  r.target = target;
  r.path = target.substr(0, target.find('?'));
  return r;
}

Router sample_router() {
  Router router;
  router.add("POST", "/api/v1/ingest/{tenant}/{dataset}", [](HttpRequest& req) {
    return HttpResponse::text(200, "ingest " + req.params.at("tenant") + "/" + req.params.at("dataset"));
  });
  router.add("GET", "/api/v1/datasets", [](HttpRequest&) { return HttpResponse::text(200, "list"); });
  router.add("PUT", "/api/v1/datasets", [](HttpRequest&) { return HttpResponse::text(200, "put"); });
  router.add("GET", "/api/v1/datasets/{id}", [](HttpRequest& req) {
    return HttpResponse::text(200, "get " + req.params.at("id"));
  });
  router.add("GET", "/", [](HttpRequest&) { return HttpResponse::text(200, "root"); });
  return router;
}

TEST(HttpTypes, HeaderLookupIsCaseInsensitive) {
  HttpRequest r;
  r.headers["Content-Type"] = "application/json";
  ASSERT_TRUE(r.header("content-type").has_value());
  EXPECT_EQ(*r.header("CONTENT-TYPE"), "application/json");
  EXPECT_FALSE(r.header("content-length").has_value());
  CaseInsensitiveLess less;
  EXPECT_FALSE(less("ABC", "abc"));
  EXPECT_FALSE(less("abc", "ABC"));
  EXPECT_TRUE(less("abc", "abd"));
  EXPECT_TRUE(less("ab", "ABC"));
}

TEST(HttpTypes, ErrorBodyIsEscapedJson) {
  auto r = HttpResponse::error(400, "bad \"value\"\n\\ here");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.headers["content-type"], "application/json");
  auto v = boost::json::parse(r.body);
  EXPECT_EQ(v.at("error").as_string(), "bad \"value\"\n\\ here");
}

TEST(HttpTypes, TextAndJsonSetContentType) {
  auto t = HttpResponse::text(201, "hi");
  EXPECT_EQ(t.status, 201);
  EXPECT_EQ(t.body, "hi");
  EXPECT_EQ(t.headers["Content-Type"], "text/plain; charset=utf-8");
  auto j = HttpResponse::json(202, "{}");
  EXPECT_EQ(j.status, 202);
  EXPECT_EQ(j.headers["Content-Type"], "application/json");
}

TEST(Router, MatchesParams) {
  Router router = sample_router();
  auto req = make("POST", "/api/v1/ingest/acme/firewall");
  auto resp = router.dispatch(req);
  EXPECT_EQ(resp.status, 200);
  EXPECT_EQ(resp.body, "ingest acme/firewall");
  EXPECT_EQ(req.params.at("tenant"), "acme");
  EXPECT_EQ(req.params.at("dataset"), "firewall");
}

TEST(Router, LiteralAndParamRoutesCoexist) {
  Router router = sample_router();
  auto list = make("GET", "/api/v1/datasets");
  EXPECT_EQ(router.dispatch(list).body, "list");
  auto one = make("GET", "/api/v1/datasets/d1");
  EXPECT_EQ(router.dispatch(one).body, "get d1");
  auto root = make("GET", "/");
  EXPECT_EQ(router.dispatch(root).body, "root");
}

TEST(Router, ParamsArePercentDecodedAndEncodedSlashStaysInSegment) {
  Router router = sample_router();
  auto req = make("GET", "/api/v1/datasets/a%2Fb%20c");
  auto resp = router.dispatch(req);
  EXPECT_EQ(resp.status, 200);
  EXPECT_EQ(req.params.at("id"), "a/b c");
}

TEST(Router, UnknownPathIs404Json) {
  Router router = sample_router();
  for (const char* target : {"/nope", "/api/v1/datasets/x/y", "/api/v1/ingest/acme", "/api/v1/datasets/"}) {
    auto req = make("GET", target);
    auto resp = router.dispatch(req);
    EXPECT_EQ(resp.status, 404) << target;
    auto v = boost::json::parse(resp.body);
    EXPECT_TRUE(v.as_object().contains("error")) << target;
  }
}

TEST(Router, WrongMethodIs405WithAllow) {
  Router router = sample_router();
  auto req = make("DELETE", "/api/v1/datasets");
  auto resp = router.dispatch(req);
  EXPECT_EQ(resp.status, 405);
  EXPECT_EQ(resp.headers["Allow"], "GET, PUT");
  auto v = boost::json::parse(resp.body);
  EXPECT_NE(std::string(v.at("error").as_string()).find("DELETE"), std::string::npos);

  auto ingest = make("GET", "/api/v1/ingest/a/b");
  auto r2 = router.dispatch(ingest);
  EXPECT_EQ(r2.status, 405);
  EXPECT_EQ(r2.headers["allow"], "POST");
}

TEST(Router, FallbackAnswersOnlyUnmatchedPaths) {
  Router router = sample_router();
  router.set_fallback([](HttpRequest& req) { return HttpResponse::text(200, "fallback " + req.method + " " + req.path); });
  auto unknown = make("GET", "/some/page");
  EXPECT_EQ(router.dispatch(unknown).body, "fallback GET /some/page");
  // A route still wins, and a path with a route for another method stays a 405.
  auto routed = make("GET", "/api/v1/datasets/x");
  EXPECT_EQ(router.dispatch(routed).body, "get x");
  auto wrong_method = make("DELETE", "/api/v1/datasets");
  EXPECT_EQ(router.dispatch(wrong_method).status, 405);
}

TEST(Router, HeadFallsBackToGet) {
  Router router = sample_router();
  auto req = make("HEAD", "/api/v1/datasets/x");
  auto resp = router.dispatch(req);
  EXPECT_EQ(resp.status, 200);
  EXPECT_EQ(req.params.at("id"), "x");
}

TEST(Router, WorksWithoutTarget) {
  Router router = sample_router();
  HttpRequest req;
  req.method = "GET";
  req.path = "/api/v1/datasets/zz";
  EXPECT_EQ(router.dispatch(req).body, "get zz");
}

TEST(Router, RejectsBadPatterns) {
  Router router;
  EXPECT_THROW(router.add("GET", "no-slash", [](HttpRequest&) { return HttpResponse{}; }),
               std::invalid_argument);
  EXPECT_THROW(router.add("GET", "/x", HttpHandler{}), std::invalid_argument);
}

TEST(Router, HandlerExceptionPropagatesToCaller) {
  Router router;
  router.add("GET", "/boom", [](HttpRequest&) -> HttpResponse { throw std::runtime_error("boom"); });
  auto req = make("GET", "/boom");
  EXPECT_THROW(router.dispatch(req), std::runtime_error);
}

}  // namespace
}  // namespace bf
