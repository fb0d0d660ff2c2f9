//! Invalid PromQL: the exact message and byte position of the first error. The first table
//! holds Prometheus's own behaviour (its parser's messages and positions); the second covers
//! eddy's limits and the experimental syntax it rejects.

use eddy_query::parser::{parse, ParseError, MAX_DEPTH};

/// (input, byte offset, message) as Prometheus reports them.
const PROMETHEUS_ERRORS: &[(&str, usize, &str)] = &[
    (r#""#, 0, r#"no expression found in input"#),
    ("# just a comment\n\n", 0, r#"no expression found in input"#),
    (r#"1+"#, 2, r#"unexpected end of input"#),
    (r#"."#, 0, r#"unexpected character: '.'"#),
    (r#"2.5."#, 0, r#"bad number or duration syntax: "2.5.""#),
    (r#"100..4"#, 0, r#"bad number or duration syntax: "100..""#),
    (r#"0deadbeef"#, 0, r#"bad number or duration syntax: "0de""#),
    (r#"1 /"#, 3, r#"unexpected end of input"#),
    (r#"*1"#, 0, r#"unexpected <op:*>"#),
    (r#"(1))"#, 4, r#"unexpected right parenthesis ')'"#),
    (r#"((1)"#, 4, r#"unclosed left parenthesis"#),
    (r#"("#, 1, r#"unclosed left parenthesis"#),
    (
        r#"1 and 1"#,
        0,
        r#"set operator "and" not allowed in binary scalar expression"#,
    ),
    (
        r#"1 == 1"#,
        2,
        r#"comparisons between scalars must use BOOL modifier"#,
    ),
    (
        r#"1 or 1"#,
        0,
        r#"set operator "or" not allowed in binary scalar expression"#,
    ),
    (
        r#"1 unless 1"#,
        0,
        r#"set operator "unless" not allowed in binary scalar expression"#,
    ),
    (r#"1 !~ 1"#, 2, r#"unexpected character after '!': '~'"#),
    (r#"1 =~ 1"#, 2, r#"unexpected character after '=': '~'"#),
    (
        r#"-"string""#,
        0,
        r#"unary expression only allowed on expressions of type scalar or instant vector, got "string""#,
    ),
    (
        r#"-test[5m]"#,
        0,
        r#"unary expression only allowed on expressions of type scalar or instant vector, got "range vector""#,
    ),
    (r#"*test"#, 0, r#"unexpected <op:*>"#),
    (r#"@@"#, 0, r#"unexpected <op:@>"#),
    (
        r#"1 offset 1d"#,
        0,
        r#"offset modifier must be preceded by an instant vector selector or range vector selector or a subquery"#,
    ),
    (
        r#"foo offset 1s offset 2s"#,
        0,
        r#"offset may not be set multiple times"#,
    ),
    (r#"a - on(b) ignoring(c) d"#, 10, r#"unexpected <ignoring>"#),
    (
        r#"foo and 1"#,
        0,
        r#"set operator "and" not allowed in binary scalar expression"#,
    ),
    (
        r#"1 and foo"#,
        0,
        r#"set operator "and" not allowed in binary scalar expression"#,
    ),
    (
        r#"foo or 1"#,
        0,
        r#"set operator "or" not allowed in binary scalar expression"#,
    ),
    (
        r#"1 or foo"#,
        0,
        r#"set operator "or" not allowed in binary scalar expression"#,
    ),
    (
        r#"foo unless 1"#,
        0,
        r#"set operator "unless" not allowed in binary scalar expression"#,
    ),
    (
        r#"1 unless foo"#,
        0,
        r#"set operator "unless" not allowed in binary scalar expression"#,
    ),
    (
        r#"1 or on(bar) foo"#,
        0,
        r#"vector matching only allowed between instant vectors"#,
    ),
    (
        r#"foo == on(bar) 10"#,
        0,
        r#"vector matching only allowed between instant vectors"#,
    ),
    (
        r#"foo + group_left(baz) bar"#,
        6,
        r#"unexpected <group_left>"#,
    ),
    (
        r#"foo and on(bar) group_left(baz) bar"#,
        0,
        r#"no grouping allowed for "and" operation"#,
    ),
    (
        r#"foo and on(bar) group_right(baz) bar"#,
        0,
        r#"no grouping allowed for "and" operation"#,
    ),
    (
        r#"foo or on(bar) group_left(baz) bar"#,
        0,
        r#"no grouping allowed for "or" operation"#,
    ),
    (
        r#"foo or on(bar) group_right(baz) bar"#,
        0,
        r#"no grouping allowed for "or" operation"#,
    ),
    (
        r#"foo unless on(bar) group_left(baz) bar"#,
        0,
        r#"no grouping allowed for "unless" operation"#,
    ),
    (
        r#"foo unless on(bar) group_right(baz) bar"#,
        0,
        r#"no grouping allowed for "unless" operation"#,
    ),
    (
        r#"http_requests{group="production"} + on(instance) group_left(job,instance) cpu_count{type="smp"}"#,
        34,
        r#"label "instance" must not occur in ON and GROUP clause at once"#,
    ),
    (
        r#"foo + bool bar"#,
        4,
        r#"bool modifier can only be used on comparison operators"#,
    ),
    (
        r#"foo + bool 10"#,
        4,
        r#"bool modifier can only be used on comparison operators"#,
    ),
    (
        r#"foo and bool 10"#,
        4,
        r#"bool modifier can only be used on comparison operators"#,
    ),
    (
        r#"foo @ +Inf"#,
        0,
        r#"timestamp out of bounds for @ modifier: +Inf"#,
    ),
    (
        r#"foo @ -Inf"#,
        0,
        r#"timestamp out of bounds for @ modifier: -Inf"#,
    ),
    (
        r#"foo @ NaN"#,
        0,
        r#"timestamp out of bounds for @ modifier: NaN"#,
    ),
    (r#"{"#, 1, r#"unexpected end of input inside braces"#),
    (r#"}"#, 0, r#"unexpected character: '}'"#),
    (r#"some{"#, 5, r#"unexpected end of input inside braces"#),
    (r#"some}"#, 4, r#"unexpected character: '}'"#),
    (
        r#"some_metric{a=b}"#,
        14,
        r#"unexpected identifier "b" in label matching, expected string"#,
    ),
    (
        r#"some_metric{a:b="b"}"#,
        13,
        r#"unexpected character inside braces: ':'"#,
    ),
    (
        r#"foo{a*"b"}"#,
        5,
        r#"unexpected character inside braces: '*'"#,
    ),
    (
        r#"foo{a>="b"}"#,
        5,
        r#"unexpected character inside braces: '>'"#,
    ),
    (
        r#"foo{gibberish}"#,
        13,
        r#"unexpected "}" in label matching, expected label matching operator"#,
    ),
    (r#"foo{1}"#, 4, r#"unexpected character inside braces: '1'"#),
    (
        r#"{}"#,
        0,
        r#"vector selector must contain at least one non-empty matcher"#,
    ),
    (
        r#"{x=""}"#,
        0,
        r#"vector selector must contain at least one non-empty matcher"#,
    ),
    (
        r#"{x=~".*"}"#,
        0,
        r#"vector selector must contain at least one non-empty matcher"#,
    ),
    (
        r#"{x!~".+"}"#,
        0,
        r#"vector selector must contain at least one non-empty matcher"#,
    ),
    (
        r#"{x!="a"}"#,
        0,
        r#"vector selector must contain at least one non-empty matcher"#,
    ),
    (
        r#"foo{__name__="bar"}"#,
        0,
        r#"metric name must not be set twice: "foo" or "bar""#,
    ),
    (
        r#"foo{__name__= =}"#,
        14,
        r#"unexpected "=" in label matching, expected string"#,
    ),
    (
        r#"foo{,}"#,
        4,
        r#"unexpected "," in label matching, expected identifier or "}""#,
    ),
    (
        r#"foo{__name__ == "bar"}"#,
        14,
        r#"unexpected "=" in label matching, expected string"#,
    ),
    (
        r#"foo{__name__="bar" lol}"#,
        19,
        r#"unexpected identifier "lol" in label matching, expected "," or "}""#,
    ),
    (
        r#"foo{"a"=}"#,
        8,
        r#"unexpected "}" in label matching, expected string"#,
    ),
    (r#"foo[5mm]"#, 4, r#"bad number or duration syntax: "5mm""#),
    (r#"foo[5m1]"#, 4, r#"bad number or duration syntax: "5m1""#),
    (
        r#"foo[5m:1m1]"#,
        7,
        r#"bad number or duration syntax: "1m1""#,
    ),
    (
        r#"foo[5y1hs]"#,
        4,
        r#"unknown unit "hs" in duration "5y1hs""#,
    ),
    (r#"foo[5m1h]"#, 4, r#"not a valid duration string: "5m1h""#),
    (r#"foo[5m1m]"#, 4, r#"not a valid duration string: "5m1m""#),
    (r#"foo[0m]"#, 4, r#"duration must be greater than 0"#),
    (
        r#"foo["5m"]"#,
        4,
        r#"unexpected character in duration expression: '"'"#,
    ),
    (
        r#"foo[]"#,
        4,
        r#"unexpected "]" in subquery or range selector, expected number, duration, step(), or range()"#,
    ),
    (r#"foo[-1]"#, 4, r#"duration must be greater than 0"#),
    (
        r#"some_metric[5m] OFFSET 1mm"#,
        23,
        r#"bad number or duration syntax: "1mm""#,
    ),
    (
        r#"some_metric[5m] OFFSET"#,
        22,
        r#"unexpected end of input in offset, expected number, duration, step(), or range()"#,
    ),
    (
        r#"some_metric OFFSET 1m[5m]"#,
        21,
        r#"no offset modifiers allowed before range"#,
    ),
    (
        r#"some_metric[5m] @"#,
        17,
        r#"unexpected end of input in @, expected timestamp"#,
    ),
    (
        r#"some_metric @ 1234 [5m]"#,
        19,
        r#"no @ modifiers allowed before range"#,
    ),
    (
        r#"some_metric @ start() [5m]"#,
        22,
        r#"no @ modifiers allowed before range"#,
    ),
    (
        r#"some_metric @ end()[5m]"#,
        19,
        r#"no @ modifiers allowed before range"#,
    ),
    (
        r#"(foo + bar)[5m]"#,
        11,
        r#"ranges only allowed for vector selectors"#,
    ),
    (
        r#"sum by ("foo)(some_metric{})"#,
        8,
        r#"unterminated quoted string"#,
    ),
    (
        r#"sum without(==)(some_metric)"#,
        12,
        r#"unexpected <op:==> in grouping opts, expected label"#,
    ),
    (
        r#"sum without(,)(some_metric)"#,
        12,
        r#"unexpected "," in grouping opts, expected label"#,
    ),
    (
        r#"sum without(foo,,)(some_metric)"#,
        16,
        r#"unexpected "," in grouping opts, expected label"#,
    ),
    (
        r#"sum some_metric by (test)"#,
        4,
        r#"unexpected identifier "some_metric""#,
    ),
    (
        r#"sum (some_metric) by test"#,
        21,
        r#"unexpected identifier "test" in grouping opts, expected "(""#,
    ),
    (
        r#"sum () by (test)"#,
        0,
        r#"no arguments for aggregate expression provided"#,
    ),
    (
        r#"MIN keep_common (some_metric)"#,
        4,
        r#"unexpected identifier "keep_common""#,
    ),
    (
        r#"MIN (some_metric) keep_common"#,
        18,
        r#"unexpected identifier "keep_common""#,
    ),
    (
        r#"sum (some_metric) without (test) by (test)"#,
        33,
        r#"unexpected <by>"#,
    ),
    (
        r#"sum without (test) (some_metric) by (test)"#,
        33,
        r#"unexpected <by>"#,
    ),
    (
        r#"topk(some_metric)"#,
        0,
        r#"wrong number of arguments for aggregate expression provided, expected 2, got 1"#,
    ),
    (
        r#"topk(some_metric,)"#,
        16,
        r#"trailing commas not allowed in function call args"#,
    ),
    (
        r#"topk(some_metric, other_metric)"#,
        5,
        r#"expected type scalar in aggregation parameter, got instant vector"#,
    ),
    (
        r#"count_values(5, other_metric)"#,
        13,
        r#"expected type string in aggregation parameter, got scalar"#,
    ),
    (
        r#"rate(some_metric[5m]) @ 1234"#,
        0,
        r#"@ modifier must be preceded by an instant vector selector or range vector selector or a subquery"#,
    ),
    (
        r#"floor()"#,
        0,
        r#"expected 1 argument(s) in call to "floor", got 0"#,
    ),
    (
        r#"floor(some_metric, other_metric)"#,
        0,
        r#"expected 1 argument(s) in call to "floor", got 2"#,
    ),
    (
        r#"floor(some_metric, 1)"#,
        0,
        r#"expected 1 argument(s) in call to "floor", got 2"#,
    ),
    (
        r#"floor(1)"#,
        6,
        r#"expected type instant vector in call to function "floor", got scalar"#,
    ),
    (
        r#"hour(some_metric, some_metric, some_metric)"#,
        0,
        r#"expected at most 1 argument(s) in call to "hour", got 3"#,
    ),
    (
        r#"time(some_metric)"#,
        0,
        r#"expected 0 argument(s) in call to "time", got 1"#,
    ),
    (
        r#"non_existent_function_far_bar()"#,
        0,
        r#"unknown function with name "non_existent_function_far_bar""#,
    ),
    (
        r#"rate(some_metric)"#,
        5,
        r#"expected type range vector in call to function "rate", got instant vector"#,
    ),
    (r#"-="#, 1, r#"unexpected "=""#),
    (r#"++-++-+-+-<"#, 10, r#"unexpected <op:<>"#),
    (r#"e-+=/(0)"#, 3, r#"unexpected "=""#),
    (r#"a>b()"#, 2, r#"unknown function with name "b""#),
    (
        r#"rate(avg)"#,
        5,
        r#"expected type range vector in call to function "rate", got instant vector"#,
    ),
    (r#"`\``"#, 3, r#"unterminated raw string"#),
    (r#""\"#, 0, r#"escape sequence not terminated"#),
    (r#""\c""#, 0, r#"unknown escape sequence U+0063 'c'"#),
    (
        r#""\x.""#,
        0,
        r#"illegal character U+002E '.' in escape sequence"#,
    ),
    (
        r#"foo{bar="baz"}["#,
        15,
        r#"unexpected end of input in duration expression"#,
    ),
    (
        r#"test[5d] OFFSET 10s [10m:5s]"#,
        0,
        r#"subquery is only allowed on instant vector, got matrix instead"#,
    ),
    (
        r#"(foo + bar{nm="val"})[5m:][10m:5s]"#,
        0,
        r#"subquery is only allowed on instant vector, got matrix instead"#,
    ),
    (
        r#"rate(food[1m])[1h] offset 1h"#,
        14,
        r#"ranges only allowed for vector selectors"#,
    ),
    (
        r#"rate(food[1m])[1h] @ 100"#,
        14,
        r#"ranges only allowed for vector selectors"#,
    ),
    (
        r#"info(rate(http_request_counter_total{}[5m]), target_info{foo="bar"})"#,
        45,
        r#"expected label selectors only, got vector selector instead"#,
    ),
    (
        r#"info(http_request_counter_total{namespace="zzz"}, {foo="bar"} == 1)"#,
        50,
        r#"expected label selectors only"#,
    ),
    (r#"foo[5s/0d]"#, 6, r#"division by zero"#),
    (r#"foo offset (4d/0)"#, 14, r#"division by zero"#),
    (r#"foo[5s%0d]"#, 6, r#"modulo by zero"#),
    (r#"foo offset 9.5e10"#, 11, r#"duration out of range"#),
    (r#"foo[9.5e10]"#, 4, r#"duration out of range"#),
    (r#"sum("#, 4, r#"unclosed left parenthesis"#),
    (r#"sum(rate("#, 9, r#"unclosed left parenthesis"#),
    (
        r#"foo[5s x 5s]"#,
        7,
        r#"unexpected character: 'x', expected ':'"#,
    ),
    (
        r#"foo[5s s 5s]"#,
        7,
        r#"unexpected character: 's', expected ':'"#,
    ),
    (
        r#"1[5m] smoothed"#,
        1,
        r#"ranges only allowed for vector selectors"#,
    ),
    (
        r#"1[5m] anchored"#,
        1,
        r#"ranges only allowed for vector selectors"#,
    ),
];

/// (input, byte offset, message) for cases Prometheus's table does not cover, or where eddy
/// differs on purpose (experimental syntax it does not support). An empty message means the
/// input must parse.
const EDDY_ERRORS: &[(&str, usize, &str)] = &[
    ("sum(foo) by", 11, r#"unexpected end of input in grouping opts, expected "(""#),
    ("sum by (a b) (foo)", 10, r#"unexpected identifier "b" in grouping opts, expected "," or ")""#),
    ("sum by (nan) (foo)", 8, r#"unexpected number "nan" in grouping opts, expected label"#),
    ("sum by (without) (foo)", 8, "unexpected <without> in grouping opts, expected label"),
    ("rate(foo[5m]", 12, "unclosed left parenthesis"),
    ("foo[5m", 6, "unclosed left bracket"),
    ("foo]", 3, "unexpected right bracket ']'"),
    ("foo[5m][5m]", 7, "ranges only allowed for vector selectors"),
    ("foo[5m:1m:1m]", 9, "unexpected colon ':'"),
    ("foo[5m 1m]", 7, r#"unexpected duration "1m" in subquery or range, expected ":" or "]""#),
    ("foo[5m:1m 1m]", 10, r#"unexpected duration "1m" in subquery selector, expected "]""#),
    ("foo[5m:,]", 7, r#"unexpected "," in subquery selector, expected number, duration, step(), range(), or "]""#),
    ("foo[0.0001]", 4, "duration must be at least 1ms"),
    ("foo[1m-2m]", 4, "duration must be greater than 0"),
    ("foo[5m:0s]", 7, "duration must be greater than 0"),
    ("foo offset", 10, "unexpected end of input in offset, expected number, duration, step(), or range()"),
    ("foo offset bar", 11, r#"unexpected identifier "bar" in offset, expected number, duration, step(), or range()"#),
    ("foo @", 5, "unexpected end of input in @, expected timestamp"),
    ("foo @ bar", 6, r#"unexpected identifier "bar" in @, expected timestamp"#),
    ("foo @ start", 11, "unexpected end of input in @, expected timestamp"),
    ("foo @ 1 @ 2", 0, "@ <timestamp> may not be set multiple times"),
    ("foo @ start() @ end()", 0, "@ <timestamp> may not be set multiple times"),
    ("(foo) @ 1", 0, "@ modifier must be preceded by an instant vector selector or range vector selector or a subquery"),
    (
        "(foo) offset 1m",
        0,
        "offset modifier must be preceded by an instant vector selector or range vector selector or a subquery",
    ),
    ("foo[5m:] offset 1m offset 1m", 0, "offset may not be set multiple times"),
    ("foo @ 1 [5m]", 8, "no @ modifiers allowed before range"),
    ("foo[5m] anchored", 0, "anchored modifier is experimental and not supported"),
    ("foo[5m] smoothed", 0, "smoothed modifier is experimental and not supported"),
    ("a + fill(0) b", 4, "binop fill modifiers are experimental and not supported"),
    ("a </ b", 2, "the </ operator (native histogram trimming) is not supported"),
    ("a >/ b", 2, "the >/ operator (native histogram trimming) is not supported"),
    ("foo[step()]", 4, "step() and range() in durations are experimental and not supported"),
    ("foo[5m:range()]", 7, "step() and range() in durations are experimental and not supported"),
    ("foo[5m/0]", 6, "division by zero"),
    ("foo[1y*1000]", 4, "duration out of range"),
    ("foo[2^1024]", 4, "duration out of range"),
    ("foo[max_of(1m 2m)]", 14, r#"unexpected duration "2m" in subquery or range selector, expected ",""#),
    ("rate(foo[5m], 1)", 0, r#"expected 1 argument(s) in call to "rate", got 2"#),
    ("round()", 0, r#"expected at least 1 argument(s) in call to "round", got 0"#),
    ("round(foo, 1, 2)", 0, r#"expected at most 2 argument(s) in call to "round", got 3"#),
    ("label_join(foo)", 0, r#"expected at least 3 argument(s) in call to "label_join", got 1"#),
    (r#"label_join(foo, "a", ",", 1)"#, 26, r#"expected type string in call to function "label_join", got scalar"#),
    (r#"clamp(foo, 1, "x")"#, 14, r#"expected type scalar in call to function "clamp", got string"#),
    (
        "histogram_quantile(foo, 0.5)",
        19,
        r#"expected type scalar in call to function "histogram_quantile", got instant vector"#,
    ),
    ("RATE(foo[5m])", 0, r#"unknown function with name "RATE""#),
    ("foo:bar(1)", 7, r#"unexpected "(""#),
    ("sum(foo[5m])", 4, "expected type instant vector in aggregation expression, got range vector"),
    (r#"quantile("a", foo)"#, 9, "expected type scalar in aggregation parameter, got string"),
    ("sum(1, foo)", 0, "wrong number of arguments for aggregate expression provided, expected 1, got 2"),
    ("topk(1, 2, foo)", 0, "wrong number of arguments for aggregate expression provided, expected 2, got 3"),
    ("sum by (a) (foo) by (b)", 17, "unexpected <by>"),
    (r#"foo{a=~"("}"#, 4, "invalid regex"),
    ("1 < 2", 2, "comparisons between scalars must use BOOL modifier"),
    ("foo[5m] + 1", 0, "binary expression must contain only scalar and instant vector types"),
    ("1 + foo[5m]", 4, "binary expression must contain only scalar and instant vector types"),
    (r#""a" + 1"#, 0, "binary expression must contain only scalar and instant vector types"),
    ("a + on(x) group_left(x) b", 2, r#"label "x" must not occur in ON and GROUP clause at once"#),
    ("a + ignoring(x) group_left(x) b", 0, ""),
    (
        "-foo[5m]",
        0,
        r#"unary expression only allowed on expressions of type scalar or instant vector, got "range vector""#,
    ),
    (r#""a"[5m:]"#, 0, "subquery is only allowed on instant vector, got string instead"),
    ("1[5m:]", 0, "subquery is only allowed on instant vector, got scalar instead"),
    (r#"foo{a="b"}{c="d"}"#, 10, r#"unexpected "{""#),
    ("foo bar", 4, r#"unexpected identifier "bar""#),
    ("foo on", 4, "unexpected <on>"),
    ("foo + on", 8, r#"unexpected end of input in grouping opts, expected "(""#),
    ("on", 0, "unexpected <on>"),
    ("bool", 0, "unexpected <bool>"),
    ("atan2", 0, "unexpected <op:atan2>"),
    ("1 +", 3, "unexpected end of input"),
    ("()", 1, r#"unexpected ")""#),
    (r#"foo{a="b""#, 9, "unexpected end of input inside braces"),
    (r#""abc"#, 0, "unterminated quoted string"),
    ("'abc\ndef'", 0, "unterminated quoted string"),
    (r#""\uD800""#, 0, "escape sequence is an invalid Unicode code point"),
    (r#""\'""#, 0, "unknown escape sequence U+0027 '''"),
    ("$", 0, "unexpected character: '$'"),
    (r#"foo{a="b"} !"#, 11, "unexpected character after '!': '\u{fffd}'"),
    ("1 2", 2, r#"unexpected number "2""#),
    (r#"foo "a very long string""#, 4, r#"unexpected string "\"a very lo"..."#),
    ("0x", 0, r#"error parsing number: strconv.ParseFloat: parsing "0x": invalid syntax"#),
    ("1e", 0, r#"bad number or duration syntax: "1e""#),
    (
        "0x8000000000000000",
        0,
        r#"error parsing number: strconv.ParseFloat: parsing "0x8000000000000000": invalid syntax"#,
    ),
    ("1.5m", 0, r#"unknown unit "." in duration "1.5m""#),
    ("foo @ Inf", 0, "timestamp out of bounds for @ modifier: +Inf"),
    ("foo offset 300y", 11, "duration out of range"),
    ("info(foo, bar)", 10, "expected label selectors only, got vector selector instead"),
    ("info(foo, {})", 0, ""),
    // Error order follows Prometheus's checker: a call's argument count before anything inside
    // its arguments, then each argument's own errors before its type.
    ("rate(foo, sum(x[5m]))", 0, r#"expected 1 argument(s) in call to "rate", got 2"#),
    ("clamp(1, sum(x[5m]), 2)", 6, r#"expected type instant vector in call to function "clamp", got scalar"#),
    ("clamp(foo, sum(x[5m]), \"a\")", 15, "expected type instant vector in aggregation expression, got range vector"),
    // An aggregation's expression is checked before its parameter.
    ("topk(foo, rate(x))", 15, r#"expected type range vector in call to function "rate", got instant vector"#),
    ("topk(foo, x[5m])", 10, "expected type instant vector in aggregation expression, got range vector"),
    ("topk(rate(y), x)", 10, r#"expected type range vector in call to function "rate", got instant vector"#),
    ("(1 < 2) + topk(foo, x[5m])", 3, "comparisons between scalars must use BOOL modifier"),
    ("1 < 2 + topk(foo, x[5m])", 18, "expected type instant vector in aggregation expression, got range vector"),
    ("abs(rate(x)) + (1 == 1)", 9, r#"expected type range vector in call to function "rate", got instant vector"#),
    // A string that is not UTF-8 parses (count_values rejects it when evaluated), except where
    // it must be a label name at parse time, or a matcher (eddy's labels are UTF-8).
    (r#"count_values("a\xc5z", foo)"#, 0, ""),
    (r#"sum without ("a\xc5z") (foo)"#, 14, r#"invalid label name for grouping: "a\xc5z""#),
    (r#"foo{bar="\377"}"#, 8, r#"invalid UTF-8 in label matcher string "\xff""#),
];

fn check(input: &str, pos: usize, msg: &str) -> Option<String> {
    match parse(input) {
        Ok(_) if msg.is_empty() => None,
        Ok(e) => Some(format!(
            "{input:?}: parsed as {e}, want error {msg:?} at {pos}"
        )),
        Err(err) if msg.is_empty() => Some(format!("{input:?}: unexpected error {err}")),
        // Regex and UTF-8 messages carry extra detail after the part we pin.
        Err(ParseError { pos: p, msg: m, .. }) if p == pos && (m == msg || m.starts_with(msg)) => {
            None
        }
        Err(err) => Some(format!(
            "{input:?}: got {:?} at {}, want {msg:?} at {pos}",
            err.msg, err.pos
        )),
    }
}

#[test]
fn errors_match_prometheus() {
    let failures: Vec<String> = PROMETHEUS_ERRORS
        .iter()
        .filter_map(|(i, p, m)| check(i, *p, m))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} differ:\n{}",
        failures.len(),
        PROMETHEUS_ERRORS.len(),
        failures.join("\n")
    );
}

#[test]
fn eddy_specific_errors() {
    let failures: Vec<String> = EDDY_ERRORS
        .iter()
        .filter_map(|(i, p, m)| check(i, *p, m))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} differ:\n{}",
        failures.len(),
        EDDY_ERRORS.len(),
        failures.join("\n")
    );
}

#[test]
fn display_reads_like_prometheus() {
    let err = parse(r#"foo{a="b"} *"#).expect_err("invalid");
    assert_eq!(
        err.to_string(),
        "1:13: parse error: unexpected end of input"
    );
    let err = parse("sum(\n  rate(foo)\n)").expect_err("invalid");
    assert_eq!((err.line, err.col, err.pos), (2, 8, 12));
    assert_eq!(
        err.to_string(),
        "2:8: parse error: expected type range vector in call to function \"rate\", got instant vector"
    );
    let err = parse("*1").expect_err("invalid");
    assert_eq!(err.to_string(), "1:1: parse error: unexpected <op:*>");
}

/// Deeply nested input stops with an error at the limit instead of overflowing the stack, and
/// the deepest accepted inputs parse, print and drop on a default 2 MiB test thread (debug build).
#[test]
fn nesting_is_limited() {
    let n = MAX_DEPTH / 2 - 2;
    for ok in [
        format!(
            "{}1{}",
            "(".repeat(MAX_DEPTH - 2),
            ")".repeat(MAX_DEPTH - 2)
        ),
        format!("{}foo", "-".repeat(MAX_DEPTH - 2)),
        format!("{}foo{}", "abs(".repeat(n), ")".repeat(n)),
        format!("{}foo{}", "sum(".repeat(n), ")".repeat(n)),
        format!("{}foo{}", "topk(1, ".repeat(n), ")".repeat(n)),
        vec!["1"; MAX_DEPTH / 2].join(" + "),
        format!(
            "{}foo{}",
            "max_over_time(".repeat(MAX_DEPTH / 3 - 2),
            "[1m:])".repeat(MAX_DEPTH / 3 - 2)
        ),
        format!(
            "foo[{}1m{}]",
            "(".repeat(MAX_DEPTH - 3),
            ")".repeat(MAX_DEPTH - 3)
        ),
    ] {
        let e = parse(&ok).unwrap_or_else(|err| panic!("{}…: {err}", &ok[..20]));
        assert!(!e.to_string().is_empty());
    }
    for deep in [
        format!(
            "{}1{}",
            "(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        ),
        format!("{}1", "-".repeat(MAX_DEPTH + 1)),
        format!(
            "{}foo{}",
            "abs(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        ),
        format!(
            "{}foo{}",
            "sum(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        ),
        vec!["1"; MAX_DEPTH + 2].join(" + "),
        vec!["1"; MAX_DEPTH + 2].join(" ^ "),
        format!("foo{}", "[1m:]".repeat(MAX_DEPTH + 1)),
        format!(
            "foo[{}1m{}]",
            "(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        ),
        format!("{}1{}", "(".repeat(100_000), ")".repeat(100_000)),
        vec!["1"; 100_000].join(" + "),
    ] {
        let err = parse(&deep).expect_err("too deep");
        assert!(
            err.msg.starts_with("expression nesting too deep"),
            "{}…: {err}",
            &deep[..20]
        );
    }
}
