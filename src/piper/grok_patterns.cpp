// The built-in grok pattern library (names as in the common grok libraries; the
// expressions written here for RE2 from each pattern's documented meaning). RE2 has
// no look-around or backreferences, so none is used. Captures inside a pattern
// (SYSLOGBASE's program, pid, …) become fields when the pattern is used.
#include "piper/grok_patterns.h"

namespace bf {

const std::map<std::string, std::string>& grok_library() {
  static const std::map<std::string, std::string> lib{
      // text and numbers
      {"USERNAME", R"g([a-zA-Z0-9._-]+)g"},
      {"USER", R"g(%{USERNAME})g"},
      {"EMAILLOCALPART", R"g([a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]+)*)g"},
      {"EMAILADDRESS", R"g(%{EMAILLOCALPART}@%{HOSTNAME})g"},
      {"HTTPDUSER", R"g(%{EMAILADDRESS}|%{USER})g"},
      {"INT", R"g([+-]?[0-9]+)g"},
      {"BASE10NUM", R"g([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))g"},
      {"NUMBER", R"g(%{BASE10NUM})g"},
      {"BASE16NUM", R"g([+-]?(?:0x)?[0-9A-Fa-f]+)g"},
      {"BASE16FLOAT", R"g([+-]?(?:0x)?(?:[0-9A-Fa-f]+(?:\.[0-9A-Fa-f]*)?|\.[0-9A-Fa-f]+))g"},
      {"POSINT", R"g(\b[1-9][0-9]*\b)g"},
      {"NONNEGINT", R"g(\b[0-9]+\b)g"},
      {"WORD", R"g(\b\w+\b)g"},
      {"NOTSPACE", R"g(\S+)g"},
      {"SPACE", R"g(\s*)g"},
      {"DATA", R"g(.*?)g"},
      {"GREEDYDATA", R"g(.*)g"},
      {"QUOTEDSTRING", R"g("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`(?:[^`\\]|\\.)*`)g"},
      {"QS", R"g(%{QUOTEDSTRING})g"},
      {"UUID", R"g([A-Fa-f0-9]{8}-(?:[A-Fa-f0-9]{4}-){3}[A-Fa-f0-9]{12})g"},
      {"URN", R"g(urn:[0-9A-Za-z][0-9A-Za-z-]{0,31}:(?:%[0-9a-fA-F]{2}|[0-9A-Za-z()+,.:=@;$_!*'/?#-])+)g"},
      // networking
      {"MAC", R"g(%{CISCOMAC}|%{WINDOWSMAC}|%{COMMONMAC})g"},
      {"CISCOMAC", R"g((?:[A-Fa-f0-9]{4}\.){2}[A-Fa-f0-9]{4})g"},
      {"WINDOWSMAC", R"g((?:[A-Fa-f0-9]{2}-){5}[A-Fa-f0-9]{2})g"},
      {"COMMONMAC", R"g((?:[A-Fa-f0-9]{2}:){5}[A-Fa-f0-9]{2})g"},
      {"IPV4", R"g((?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9]))g"},
      // Every compressed form of RFC 4291 §2.2, longest first, then the embedded-IPv4 forms.
      {"IPV6", R"g((?:(?:[0-9A-Fa-f]{1,4}:){6}%{IPV4}|::(?:[fF]{4}(?::0{1,4})?:)?%{IPV4}|(?:[0-9A-Fa-f]{1,4}:){1,4}:%{IPV4}|)g"
               R"g((?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}|(?:[0-9A-Fa-f]{1,4}:){1,6}:[0-9A-Fa-f]{1,4}|)g"
               R"g((?:[0-9A-Fa-f]{1,4}:){1,5}(?::[0-9A-Fa-f]{1,4}){1,2}|(?:[0-9A-Fa-f]{1,4}:){1,4}(?::[0-9A-Fa-f]{1,4}){1,3}|)g"
               R"g((?:[0-9A-Fa-f]{1,4}:){1,3}(?::[0-9A-Fa-f]{1,4}){1,4}|(?:[0-9A-Fa-f]{1,4}:){1,2}(?::[0-9A-Fa-f]{1,4}){1,5}|)g"
               R"g([0-9A-Fa-f]{1,4}:(?::[0-9A-Fa-f]{1,4}){1,6}|:(?::[0-9A-Fa-f]{1,4}){1,7}|(?:[0-9A-Fa-f]{1,4}:){1,7}:|::)(?:%[0-9A-Za-z]+)?)g"},
      {"IP", R"g(%{IPV4}|%{IPV6})g"},
      {"HOSTNAME", R"g(\b[0-9A-Za-z](?:[0-9A-Za-z-]{0,62})(?:\.[0-9A-Za-z](?:[0-9A-Za-z-]{0,62}))*\.?)g"},
      {"HOST", R"g(%{HOSTNAME})g"},
      {"IPORHOST", R"g(%{IP}|%{HOSTNAME})g"},
      {"HOSTPORT", R"g(%{IPORHOST}:%{POSINT})g"},
      // paths and URIs
      {"UNIXPATH", R"g((?:/[^/\s]*)+)g"},
      {"WINPATH", R"g((?:[A-Za-z]+:|\\)(?:\\[^\\?*]*)+)g"},
      {"PATH", R"g(%{UNIXPATH}|%{WINPATH})g"},
      {"TTY", R"g(/dev/(?:pts|tty(?:[pq])?)(?:\w+)?/?(?:[0-9]+))g"},
      {"URIPROTO", R"g([A-Za-z](?:[A-Za-z0-9+.-]+))g"},
      {"URIHOST", R"g(%{IPORHOST}(?::%{POSINT})?)g"},
      {"URIPATH", R"g((?:/[A-Za-z0-9$.+!*'(){},~:;=@#%&_-]*)+)g"},
      {"URIQUERY", R"g([A-Za-z0-9$.+!*'|(){},~@#%&/=:;_?\[\]-]*)g"},
      {"URIPARAM", R"g(\?%{URIQUERY})g"},
      {"URIPATHPARAM", R"g(%{URIPATH}(?:%{URIPARAM})?)g"},
      {"URI", R"g(%{URIPROTO}://(?:%{USER}(?::[^@]*)?@)?(?:%{URIHOST})?(?:%{URIPATHPARAM})?)g"},
      // dates and times
      {"MONTH", R"g(\b(?:[Jj]an(?:uary)?|[Ff]eb(?:ruary)?|[Mm]ar(?:ch)?|[Aa]pr(?:il)?|[Mm]ay|[Jj]un(?:e)?|[Jj]ul(?:y)?|)g"
                R"g([Aa]ug(?:ust)?|[Ss]ep(?:t|tember)?|[Oo]ct(?:ober)?|[Nn]ov(?:ember)?|[Dd]ec(?:ember)?)\b)g"},
      {"MONTHNUM", R"g(0?[1-9]|1[0-2])g"},
      {"MONTHNUM2", R"g(0[1-9]|1[0-2])g"},
      {"MONTHDAY", R"g(0[1-9]|[12][0-9]|3[01]|[1-9])g"},
      {"DAY", R"g((?:Mon(?:day)?|Tue(?:sday)?|Wed(?:nesday)?|Thu(?:rsday)?|Fri(?:day)?|Sat(?:urday)?|Sun(?:day)?))g"},
      {"YEAR", R"g((?:[0-9]{2}){1,2})g"},
      {"HOUR", R"g(2[0123]|[01]?[0-9])g"},
      {"MINUTE", R"g([0-5][0-9])g"},
      {"SECOND", R"g((?:[0-5]?[0-9]|60)(?:[:.,][0-9]+)?)g"},
      {"TIME", R"g(%{HOUR}:%{MINUTE}(?::%{SECOND})?)g"},
      {"DATE_US", R"g(%{MONTHNUM}[/-]%{MONTHDAY}[/-]%{YEAR})g"},
      {"DATE_EU", R"g(%{MONTHDAY}[./-]%{MONTHNUM}[./-]%{YEAR})g"},
      {"DATE", R"g(%{DATE_US}|%{DATE_EU})g"},
      {"DATESTAMP", R"g(%{DATE}[- ]%{TIME})g"},
      {"ISO8601_TIMEZONE", R"g(Z|[+-]%{HOUR}(?::?%{MINUTE}))g"},
      {"ISO8601_SECOND", R"g(%{SECOND})g"},
      {"TIMESTAMP_ISO8601", R"g(%{YEAR}-%{MONTHNUM}-%{MONTHDAY}[T ]%{HOUR}:?%{MINUTE}(?::?%{SECOND})?%{ISO8601_TIMEZONE}?)g"},
      {"TZ", R"g((?:[APMCE][SD]T|UTC|GMT))g"},
      {"DATESTAMP_RFC822", R"g(%{DAY} %{MONTH} %{MONTHDAY} %{YEAR} %{TIME} %{TZ})g"},
      {"DATESTAMP_RFC2822", R"g(%{DAY}, %{MONTHDAY} %{MONTH} %{YEAR} %{TIME} %{ISO8601_TIMEZONE})g"},
      {"HTTPDATE", R"g(%{MONTHDAY}/%{MONTH}/%{YEAR}:%{TIME} %{INT})g"},
      {"SYSLOGTIMESTAMP", R"g(%{MONTH} +%{MONTHDAY} %{TIME})g"},
      // syslog
      {"PROG", R"g([\x21-\x5a\x5c\x5e-\x7e]+)g"},
      {"SYSLOGPROG", R"g(%{PROG:program}(?:\[%{POSINT:pid}\])?)g"},
      {"SYSLOGHOST", R"g(%{IPORHOST})g"},
      {"SYSLOGFACILITY", R"g(<%{NONNEGINT:facility}.%{NONNEGINT:priority}>)g"},
      {"SYSLOGBASE", R"g(%{SYSLOGTIMESTAMP:timestamp} (?:%{SYSLOGFACILITY} )?%{SYSLOGHOST:logsource} %{SYSLOGPROG}:)g"},
      {"LOGLEVEL", R"g([Aa]lert|ALERT|[Tt]race|TRACE|[Dd]ebug|DEBUG|[Nn]otice|NOTICE|[Ii]nfo(?:rmation)?|INFO(?:RMATION)?|)g"
                   R"g([Ww]arn(?:ing)?|WARN(?:ING)?|[Ee]rr(?:or)?|ERR(?:OR)?|[Cc]rit(?:ical)?|CRIT(?:ICAL)?|[Ff]atal|FATAL|)g"
                   R"g([Ss]evere|SEVERE|EMERG(?:ENCY)?|[Ee]merg(?:ency)?)g"},
      // web servers
      {"COMMONAPACHELOG", R"g(%{IPORHOST:clientip} %{HTTPDUSER:ident} %{HTTPDUSER:auth} \[%{HTTPDATE:timestamp}\] )g"
                          R"g("(?:%{WORD:verb} %{NOTSPACE:request}(?: HTTP/%{NUMBER:httpversion})?|%{DATA:rawrequest})" )g"
                          R"g(%{NUMBER:response} (?:%{NUMBER:bytes}|-))g"},
      {"COMBINEDAPACHELOG", R"g(%{COMMONAPACHELOG} %{QS:referrer} %{QS:agent})g"},
  };
  return lib;
}

}  // namespace bf
