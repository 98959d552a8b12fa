// S3Store without a real S3: URL building, and the wire protocol against a scripted
// raw-socket server (error mapping, retries, listing XML, multipart abort,
// conditional create). The real-server suite is tests/integration/s3_store_test.cpp.
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>

#include "fixtures/raw_http_server.h"
#include "storage/s3_store.h"

namespace bf {
namespace {

using test::raw_response;
using test::RawHttpServer;
using test::RawRequest;

constexpr const char* kEmptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

TEST(S3Url, UriEncode) {
  EXPECT_EQ(s3_uri_encode("AZaz09-_.~", false), "AZaz09-_.~");
  EXPECT_EQ(s3_uri_encode("a b+c=d&e/f", false), "a%20b%2Bc%3Dd%26e%2Ff");
  EXPECT_EQ(s3_uri_encode("a b+c=d&e/f", true), "a%20b%2Bc%3Dd%26e/f");
  EXPECT_EQ(s3_uri_encode("\xc3\xbc*", true), "%C3%BC%2A");
}

TEST(S3Url, PathStyle) {
  StorageOptions o;
  o.endpoint = "http://127.0.0.1:9000";
  o.bucket = "bkt";
  EXPECT_EQ(s3_request_url(o, "raw/a b/k"), "http://127.0.0.1:9000/bkt/raw/a%20b/k");
  EXPECT_EQ(s3_request_url(o, ""), "http://127.0.0.1:9000/bkt");
  EXPECT_EQ(s3_request_url(o, "", "list-type=2&prefix=x"), "http://127.0.0.1:9000/bkt?list-type=2&prefix=x");
  o.endpoint = "https://gw.example.com/s3/";  // behind a reverse proxy, trailing slash
  EXPECT_EQ(s3_request_url(o, "k"), "https://gw.example.com/s3/bkt/k");
}

TEST(S3Url, VirtualHostStyle) {
  StorageOptions o;
  o.bucket = "bkt";
  o.path_style = false;
  o.region = "eu-central-1";
  EXPECT_EQ(s3_request_url(o, "raw/x=1/k"), "https://bkt.s3.eu-central-1.amazonaws.com/raw/x%3D1/k");
  EXPECT_EQ(s3_request_url(o, ""), "https://bkt.s3.eu-central-1.amazonaws.com/");
  o.endpoint = "http://minio.local:9000";
  EXPECT_EQ(s3_request_url(o, "k", "uploads="), "http://bkt.minio.local:9000/k?uploads=");
}

TEST(S3Url, DefaultEndpointIsAws) {
  StorageOptions o;
  o.bucket = "bkt";
  EXPECT_EQ(s3_request_url(o, "k"), "https://s3.us-east-1.amazonaws.com/bkt/k");
}

StorageOptions fake_options(const RawHttpServer& server) {
  StorageOptions o;
  o.type = "s3";
  o.endpoint = "http://127.0.0.1:" + std::to_string(server.port());
  o.bucket = "bkt";
  o.access_key = "AKID";
  o.secret_key = "SECRET";
  o.max_retries = 3;
  o.timeout_ms = 5000;
  return o;
}

std::string error_xml(const std::string& code, const std::string& message) {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>" + code + "</Code><Message>" + message +
         "</Message><Resource>/bkt/k</Resource></Error>";
}

TEST(S3Wire, SignsAndEncodesRequests) {
  RawHttpServer server([](const RawRequest& req, int) {
    if (req.method == "GET") return raw_response(200, "payload");
    return raw_response(200, "", {{"ETag", "\"abc\""}});
  });
  auto o = fake_options(server);
  o.prefix = "tenant1/";
  o.session_token = "TOKEN";
  S3Store store(o);
  store.put("dir/a b+c", "data");
  EXPECT_EQ(store.get("dir/x"), "payload");
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].method, "PUT");
  EXPECT_EQ(reqs[0].target, "/bkt/tenant1/dir/a%20b%2Bc");
  EXPECT_EQ(reqs[0].body, "data");
  // sha256("data")
  EXPECT_EQ(reqs[0].header("x-amz-content-sha256"),
            "3a6eb0790f39ac87c94f3856b2dd2c5d110e6811602261a9a923d3bb23adc8b7");
  EXPECT_EQ(reqs[0].header("x-amz-security-token"), "TOKEN");
  EXPECT_EQ(reqs[0].header("content-md5"), "jXd/OF09/siBXSD3SWAm3A==");  // base64(md5("data")): the server verifies the body
  EXPECT_EQ(reqs[1].header("content-md5"), "");                         // no body, no digest
  const std::string auth = reqs[0].header("authorization");
  EXPECT_EQ(auth.rfind("AWS4-HMAC-SHA256 Credential=AKID/", 0), 0u) << auth;
  EXPECT_NE(auth.find("/us-east-1/s3/aws4_request"), std::string::npos) << auth;
  EXPECT_NE(auth.find("x-amz-content-sha256"), std::string::npos) << auth;
  EXPECT_NE(auth.find("x-amz-security-token"), std::string::npos) << auth;
  EXPECT_EQ(reqs[1].target, "/bkt/tenant1/dir/x");
  EXPECT_EQ(reqs[1].header("x-amz-content-sha256"), kEmptySha256);
}

TEST(S3Wire, AnonymousWhenNoKeys) {
  RawHttpServer server([](const RawRequest&, int) { return raw_response(200, "x"); });
  auto o = fake_options(server);
  o.access_key.clear();
  o.secret_key.clear();
  S3Store store(o);
  store.get("k");
  EXPECT_EQ(server.requests().at(0).header("authorization"), "");
}

TEST(S3Wire, VirtualHostAddressing) {
  RawHttpServer server([](const RawRequest&, int) { return raw_response(200, "v"); });
  auto o = fake_options(server);
  o.endpoint = "http://localhost:" + std::to_string(server.port());
  o.path_style = false;
  S3Store store(o);
  EXPECT_EQ(store.get("a/b"), "v");
  auto req = server.requests().at(0);
  EXPECT_EQ(req.target, "/a/b");
  EXPECT_EQ(req.header("host"), "bkt.localhost:" + std::to_string(server.port()));
}

TEST(S3Wire, RangeHeader) {
  RawHttpServer server([](const RawRequest&, int) {
    return raw_response(206, "cde", {{"Content-Range", "bytes 2-4/10"}});
  });
  S3Store store(fake_options(server));
  EXPECT_EQ(store.get("k", ByteRange{2, 3}), "cde");
  EXPECT_EQ(server.requests().at(0).header("range"), "bytes=2-4");
}

TEST(S3Wire, RangeIgnoredByServerIsCutLocally) {
  RawHttpServer server([](const RawRequest&, int) { return raw_response(200, "0123456789"); });
  S3Store store(fake_options(server));
  EXPECT_EQ(store.get("k", ByteRange{2, 3}), "234");
  EXPECT_EQ(store.get("k", ByteRange{8, 30}), "89");
}

TEST(S3Wire, ErrorMapping) {
  std::atomic<int> mode{0};
  RawHttpServer server([&](const RawRequest& req, int) {
    switch (mode.load()) {
      case 0: return raw_response(404, error_xml("NoSuchKey", "The specified key does not exist."));
      case 1: return raw_response(403, error_xml("SignatureDoesNotMatch", "bad sig"));
      case 2: return raw_response(403, error_xml("InvalidAccessKeyId", "who?"));
      case 3: return raw_response(403, "");  // HEAD has no body
      case 4: return raw_response(412, error_xml("PreconditionFailed", "At least one ..."));
      case 5: return raw_response(400, error_xml("InvalidArgument", "bad &amp; wrong"));
      case 6: return raw_response(404, error_xml("NoSuchBucket", "no bucket"));
      default: return raw_response(req.method == "HEAD" ? 404 : 500, "");
    }
  });
  S3Store store(fake_options(server));
  mode = 0;
  EXPECT_THROW(store.get("k"), NotFound);
  mode = 1;
  EXPECT_THROW(store.get("k"), AccessDenied);
  mode = 2;
  EXPECT_THROW(store.put("k", "x"), AccessDenied);
  mode = 3;
  EXPECT_THROW(store.head("k"), AccessDenied);
  mode = 4;
  EXPECT_THROW(store.put("k", "x"), PreconditionFailed);
  mode = 5;
  try {
    store.get("some/key");
    FAIL();
  } catch (const NotFound&) {
    FAIL() << "wrong type";
  } catch (const StorageError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("InvalidArgument"), std::string::npos) << what;
    EXPECT_NE(what.find("bad & wrong"), std::string::npos) << what;
    EXPECT_NE(what.find("s3://bkt/some/key"), std::string::npos) << what;
    EXPECT_NE(what.find("400"), std::string::npos) << what;
  }
  mode = 6;
  try {
    store.get("k");
    FAIL();
  } catch (const NotFound&) {
    FAIL() << "a missing bucket is not a missing key";
  } catch (const StorageError& e) {
    EXPECT_NE(std::string(e.what()).find("NoSuchBucket"), std::string::npos);
  }
  mode = 0;
  EXPECT_NO_THROW(store.remove("k"));  // 404 on delete is fine
}

TEST(S3Wire, RetriesThrottlingAndServerErrors) {
  RawHttpServer server([](const RawRequest&, int i) {
    switch (i) {
      case 0: return raw_response(503, error_xml("SlowDown", "Please reduce your request rate."));
      case 1: return raw_response(400, error_xml("RequestTimeout", "idle"));
      case 2: return std::string();  // dropped connection
      case 3: return raw_response(500, error_xml("InternalError", "oops"));
      default: return raw_response(200, "finally");
    }
  });
  auto o = fake_options(server);
  o.max_retries = 5;
  S3Store store(o);
  EXPECT_EQ(store.get("k"), "finally");
  EXPECT_EQ(server.requests().size(), 5u);
}

TEST(S3Wire, GivesUpAfterMaxRetries) {
  RawHttpServer server([](const RawRequest&, int) {
    return raw_response(503, error_xml("SlowDown", "slow"), {{"Retry-After", "0"}});
  });
  auto o = fake_options(server);
  o.max_retries = 2;
  S3Store store(o);
  try {
    store.put("k", "x");
    FAIL();
  } catch (const StorageError& e) {
    EXPECT_NE(std::string(e.what()).find("SlowDown"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("after 3 attempts"), std::string::npos) << e.what();
  }
  EXPECT_EQ(server.requests().size(), 3u);
}

TEST(S3Wire, ParsesListObjectsV2) {
  RawHttpServer server([](const RawRequest& req, int) {
    if (req.target.find("continuation-token") == std::string::npos) {
      return raw_response(200, R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>bkt</Name><Prefix>pre/logs/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>
  <IsTruncated>true</IsTruncated>
  <Contents><Key>pre/logs/a&amp;b.txt</Key><LastModified>2024-03-01T12:00:00.500Z</LastModified>
    <ETag>&quot;etag1&quot;</ETag><Size>11</Size><StorageClass>STANDARD</StorageClass></Contents>
  <Contents>
    <Key>pre/logs/c&#x20;d&#60;</Key>
    <LastModified>2024-03-01T12:00:01Z</LastModified><ETag>"etag2"</ETag><Size>0</Size>
  </Contents>
  <NextContinuationToken>tok/en+=</NextContinuationToken>
</ListBucketResult>)");
    }
    return raw_response(200, R"(<ListBucketResult><IsTruncated>false</IsTruncated>
<Contents><Key>pre/logs/z</Key><Size>5</Size><LastModified>2024-03-01T12:00:02.000Z</LastModified><ETag>"e3"</ETag></Contents>
</ListBucketResult>)");
  });
  auto o = fake_options(server);
  o.prefix = "pre";
  S3Store store(o);
  ListPage page = store.list("logs/", "", 2);
  ASSERT_EQ(page.objects.size(), 2u);
  EXPECT_EQ(page.objects[0].key, "logs/a&b.txt");
  EXPECT_EQ(page.objects[0].size, 11u);
  EXPECT_EQ(page.objects[0].etag, "etag1");
  EXPECT_EQ(page.objects[0].mtime_us, 1709294400500000);
  EXPECT_EQ(page.objects[1].key, "logs/c d<");
  EXPECT_EQ(page.objects[1].mtime_us, 1709294401000000);
  EXPECT_EQ(page.next_token, "tok/en+=");
  ListPage last = store.list("logs/", page.next_token, 2);
  ASSERT_EQ(last.objects.size(), 1u);
  EXPECT_EQ(last.objects[0].key, "logs/z");
  EXPECT_TRUE(last.next_token.empty());

  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  // Canonical (sorted, encoded) query on the wire: curl signs it as sent.
  EXPECT_EQ(reqs[0].target, "/bkt?list-type=2&max-keys=2&prefix=pre%2Flogs%2F");
  EXPECT_EQ(reqs[1].target,
            "/bkt?continuation-token=tok%2Fen%2B%3D&list-type=2&max-keys=2&prefix=pre%2Flogs%2F");
}

TEST(S3Wire, HeadReadsHeaders) {
  RawHttpServer server([](const RawRequest& req, int) {
    if (req.target == "/bkt/missing") return raw_response(404, "");
    // HEAD answers carry the object's length without a body.
    return std::string("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nETag: \"abc\"\r\n"
                       "Last-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\n\r\n");
  });
  S3Store store(fake_options(server));
  auto info = store.head("obj");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->size, 1234u);
  EXPECT_EQ(info->etag, "abc");
  EXPECT_EQ(info->mtime_us, 1445412480000000);
  EXPECT_FALSE(store.head("missing"));
}

TEST(S3Wire, CreateIfAbsentSendsIfNoneMatch) {
  std::atomic<int> put_status{200};
  RawHttpServer server([&](const RawRequest& req, int) {
    if (req.method == "HEAD") return raw_response(404, "");
    if (req.method == "PUT" && !req.header("if-none-match").empty() && put_status != 200) {
      return raw_response(put_status, error_xml(put_status == 412 ? "PreconditionFailed" : "NotImplemented", "x"));
    }
    return raw_response(200, "");
  });
  S3Store store(fake_options(server));
  store.create_if_absent("k", "v");
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].method, "HEAD");
  EXPECT_EQ(reqs[1].method, "PUT");
  EXPECT_EQ(reqs[1].header("if-none-match"), "*");
  // The server's atomic check lost the race.
  put_status = 412;
  EXPECT_THROW(store.create_if_absent("k", "v"), PreconditionFailed);
  // A server that refuses conditional writes: plain PUT after the HEAD check.
  put_status = 501;
  EXPECT_NO_THROW(store.create_if_absent("k", "v"));
  reqs = server.requests();
  EXPECT_EQ(reqs.back().method, "PUT");
  EXPECT_EQ(reqs.back().header("if-none-match"), "");
}

TEST(S3Wire, MultipartAbortsOnFailure) {
  const std::string upload = "UPLOAD-1";
  RawHttpServer server([&](const RawRequest& req, int) {
    if (req.method == "POST" && req.target.find("uploads") != std::string::npos) {
      return raw_response(200, "<InitiateMultipartUploadResult><Bucket>bkt</Bucket><Key>big</Key><UploadId>" +
                                   upload + "</UploadId></InitiateMultipartUploadResult>");
    }
    if (req.method == "PUT") return raw_response(200, "", {{"ETag", "\"p\""}});
    if (req.method == "POST") {  // Complete: a 200 carrying an error document
      return raw_response(200, error_xml("InternalError", "We encountered an internal error."));
    }
    return raw_response(204, "");  // abort
  });
  auto o = fake_options(server);
  o.multipart_threshold = 5 << 20;
  o.part_size = 5 << 20;
  o.max_retries = 0;
  S3Store store(o);
  std::string path = ::testing::TempDir() + "/bf_s3_multipart_" + std::to_string(::getpid());
  {
    std::ofstream out(path, std::ios::binary);
    out << std::string((11 << 20), 'm');
  }
  EXPECT_THROW(store.put_file("big", path), StorageError);
  std::remove(path.c_str());
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 6u);
  EXPECT_EQ(reqs[0].target, "/bkt/big?uploads=");
  EXPECT_EQ(reqs[1].target, "/bkt/big?partNumber=1&uploadId=UPLOAD-1");
  EXPECT_EQ(reqs[1].body.size(), 5u << 20);
  EXPECT_EQ(reqs[3].target, "/bkt/big?partNumber=3&uploadId=UPLOAD-1");
  EXPECT_EQ(reqs[3].body.size(), 1u << 20);
  EXPECT_EQ(reqs[4].method, "POST");
  EXPECT_EQ(reqs[4].target, "/bkt/big?uploadId=UPLOAD-1");
  EXPECT_NE(reqs[4].body.find("<Part><PartNumber>3</PartNumber><ETag>&quot;p&quot;</ETag></Part>"),
            std::string::npos)
      << reqs[4].body;
  EXPECT_EQ(reqs[5].method, "DELETE");
  EXPECT_EQ(reqs[5].target, "/bkt/big?uploadId=UPLOAD-1");
}

TEST(S3Wire, EnsureBucketAcceptsExisting) {
  std::atomic<int> mode{0};
  RawHttpServer server([&](const RawRequest&, int) {
    if (mode == 0) return raw_response(200, "");
    if (mode == 1) return raw_response(409, error_xml("BucketAlreadyOwnedByYou", "yours"));
    return raw_response(403, error_xml("AccessDenied", "no"));
  });
  auto o = fake_options(server);
  o.region = "eu-west-1";
  S3Store store(o);
  store.ensure_bucket();
  mode = 1;
  store.ensure_bucket();
  mode = 2;
  EXPECT_THROW(store.ensure_bucket(), AccessDenied);
  auto req = server.requests().at(0);
  EXPECT_EQ(req.method, "PUT");
  EXPECT_EQ(req.target, "/bkt");
  EXPECT_NE(req.body.find("<LocationConstraint>eu-west-1</LocationConstraint>"), std::string::npos);
  EXPECT_NE(req.header("authorization").find("/eu-west-1/s3/aws4_request"), std::string::npos);
}

TEST(S3Wire, TransportErrorsBecomeStorageErrors) {
  StorageOptions o;
  o.type = "s3";
  o.bucket = "bkt";
  o.endpoint = "http://127.0.0.1:1";
  o.max_retries = 1;
  o.timeout_ms = 2000;
  S3Store store(o);
  try {
    store.get("k");
    FAIL();
  } catch (const StorageError& e) {
    EXPECT_NE(std::string(e.what()).find("s3://bkt/k"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace bf
