"""Quiz checking: `archcalc answer`, `archcalc explain`, `archcalc quiz` (through a real terminal).

Every expected number is worked out by hand beside it, from the layer's definition in the spec:

AlexNet as CS231n lecture 9 draws it (spec `alexnet`, input 3x227x227):
  conv1: 96 filters 11x11, stride 4, pad 0: (227 - 11)/4 + 1 = 55 -> 96x55x55 (55x55x96 as HxWxC)
         weights 11*11*3*96 = 34,848; + 96 biases = 34,944 params
         MACs 55*55*96 outputs x 11*11*3 = 290,400 x 363 = 105,415,200; FLOPs 2 x that = 210,830,400
         output 55*55*96 = 290,400 elements; x 4 B = 1,161,600 B = 1.16 MB (10^6) = 1.108 MiB (2^20)
         receptive field 11
  pool1: 3x3, stride 2: (55 - 3)/2 + 1 = 27 -> 96x27x27; no parameters; rf 11 + (3 - 1)*4 = 19
  conv2: 256 filters 5x5, pad 2: (27 + 4 - 5)/1 + 1 = 27; params 5*5*96*256 + 256 = 614,400 + 256 = 614,656
  conv3, conv4, conv5: 3x3 at stride 1, pad 1: three stacked 3x3 convs, their own field 1 + 2 + 2 + 2 = 7
"""
from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from archcalc.cli import main

REPO = Path(__file__).resolve().parent.parent

CONV1_PARAMS = 34944  # 11*11*3*96 + 96
CONV1_WEIGHTS = 34848  # 11*11*3*96
CONV1_MACS = 105415200  # 55*55*96 * 11*11*3
CONV1_OUT_BYTES = 1161600  # 55*55*96 * 4 B


def cli(*args):
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def answer(*args):
    return cli("answer", *args)


# ---------------------------------------------------------------- answer: the forms students write


HWC, CHW = "55x55x96 as HxWxC", "96x55x55 as CxHxW"  # (227 - 11)/4 + 1 = 55, 96 filters


@pytest.mark.parametrize("text, order", [
    ("55x55x96", HWC),
    ("96x55x55", CHW),
    ("55 x 55 x 96", HWC),
    ("[55, 55, 96]", HWC),
    ("(96, 55, 55)", CHW),
    ("55*55*96", HWC),
])
def test_shape_in_either_order(text, order):
    r = answer("alexnet", "conv1", "out", text)
    assert r.exit_code == 0, r.output
    assert r.output.startswith(f"right: the output of conv1 is {order}")  # the reply says which order matched


def test_shape_unquoted_words_are_one_answer():
    r = answer("alexnet", "conv1", "shape", "55", "x", "55", "x", "96")  # archcalc answer ... 55 x 55 x 96
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("text", [
    "34944", "34,944",  # exact, 11*11*3*96 + 96
    "35K",  # 34,944 to the nearest 1,000 is 35,000
    "34.9k",  # to the nearest 100: 34,900
    "3.5e4",
    "35K params",
    "34848", "34.8K",  # weights only: 11*11*3*96 = 34,848 (to the nearest 100: 34,800)
])
def test_params_forms(text):
    r = answer("alexnet", "conv1", "params", text)
    assert r.exit_code == 0, r.output


def test_params_reply_says_with_or_without_biases():
    with_b = answer("alexnet", "conv1", "params", "34,944")
    assert with_b.exit_code == 0 and "(with biases)" in with_b.output.splitlines()[0]
    weights = answer("alexnet", "conv1", "params", "34848")
    assert weights.exit_code == 0 and "weights only" in weights.output.splitlines()[0]
    # 35K: 34,944 and 34,848 both round to 35,000, and the reply says so
    both = answer("alexnet", "conv1", "params", "35K")
    assert both.exit_code == 0 and "34,848" in both.output and "matches as well" in both.output
    # asking for the weights alone, the count with biases is wrong, and said to include them
    r = answer("alexnet", "conv1", "weight_params", "34944")
    assert r.exit_code == 1 and "biases" in r.output and "34,848" in r.output


def test_rounded_answer_judged_by_its_digits():
    # 34,944 to the nearest 1,000 is 35,000, not 30,000: 30K is wrong
    r = answer("alexnet", "conv1", "params", "30K")
    assert r.exit_code == 1
    assert r.output.startswith("wrong:") and "34,944" in r.output and "35K, not 30K" in r.output
    # 105,415,200 to two figures is 1.1e8 (to the nearest 10^7: 110,000,000)
    assert answer("alexnet", "conv1", "macs", "1.1e8").exit_code == 0
    assert answer("alexnet", "conv1", "macs", "105,415,200").exit_code == 0
    assert answer("alexnet", "conv1", "macs", "105.4M").exit_code == 0  # nearest 100,000: 105,400,000
    assert answer("alexnet", "conv1", "macs", "1.2e8").exit_code == 1


def test_flops_are_twice_the_macs():
    # FLOPs = 2 x 105,415,200 = 210,830,400
    assert answer("alexnet", "conv1", "flops", "210,830,400").exit_code == 0
    assert answer("alexnet", "conv1", "flops", "2.1e8").exit_code == 0
    assert answer("alexnet", "conv1", "flops", "0.2 GFLOP").exit_code == 0  # nearest 10^8: 200,000,000
    # the MAC count given for FLOPs: wrong, and said to be the MAC count
    r = answer("alexnet", "conv1", "flops", "1.1e8")
    assert r.exit_code == 1 and "that is the MAC count; FLOPs = 2 x MACs" in r.output
    # for MACs, the FLOP count is wrong
    r = answer("alexnet", "conv1", "macs", "2.1e8")
    assert r.exit_code == 1 and "FLOP count" in r.output


def test_torchvision_gflops_are_macs():
    """torchvision's AlexNet at 224 (spec alexnet_tv; 64-192-384-256-256 filters):
    conv1 (224 + 4 - 11)/4 + 1 = 55.25 -> 55: 64*55*55 * 11*11*3 = 193,600 * 363 = 70,276,800
    pool1 (55 - 3)/2 + 1 = 27; conv2 192*27*27 * 5*5*64 = 139,968 * 1,600 = 223,948,800
    pool2 (27 - 3)/2 + 1 = 13; conv3 384*13*13 * 3*3*192 = 64,896 * 1,728 = 112,140,288
    conv4 256*13*13 * 3*3*384 = 43,264 * 3,456 = 149,520,384; conv5 43,264 * 3*3*256 = 99,680,256
    fc6 9,216*4,096 = 37,748,736; fc7 4,096*4,096 = 16,777,216; fc8 4,096*1,000 = 4,096,000
    total 714,188,480 MACs: "0.7 GFLOP" is the MAC count; FLOPs 1,428,376,960 ~ 1.4 G."""
    r = answer("alexnet_tv", "total", "macs", "0.7 GFLOP")
    assert r.exit_code == 0 and "714,188,480" in r.output and "MAC count" in r.output
    r = answer("alexnet_tv", "total", "flops", "0.7 GFLOP")
    assert r.exit_code == 1 and "that is the MAC count" in r.output and "1,428,376,960" in r.output
    assert answer("alexnet_tv", "total", "flops", "1.4 GFLOP").exit_code == 0


def test_memory_elements_and_bytes():
    # 55*55*96 = 290,400 elements; a bare number for "memory" is elements
    assert answer("alexnet", "conv1", "memory", "290,400").exit_code == 0
    assert answer("alexnet", "conv1", "memory", "290.4K").exit_code == 0
    assert answer("alexnet", "conv1", "out_elems", "290400").exit_code == 0
    # 290,400 x 4 B = 1,161,600 B: 1.16 MB decimal, 1,161,600 / 1,048,576 = 1.108 MiB
    r = answer("alexnet", "conv1", "memory", "1.2MB")  # 1.16 -> 1.2 with MB = 10^6 B
    assert r.exit_code == 0 and "MB = 10^6 B" in r.output
    r = answer("alexnet", "conv1", "memory", "1.1MB")  # 1.108 -> 1.1 with MB read as 2^20 B
    assert r.exit_code == 0 and "2^20" in r.output
    assert answer("alexnet", "conv1", "out_bytes", "1.11 MiB").exit_code == 0
    assert answer("alexnet", "conv1", "out_bytes", "1,161,600").exit_code == 0  # a bare number of bytes
    r = answer("alexnet", "conv1", "memory", "96MB")
    assert r.exit_code == 1 and "1,161,600 B" in r.output
    # at fp16, 2 B per element: 580,800 B
    assert answer("alexnet", "conv1", "out_bytes", "580,800 B", "--dtype", "fp16").exit_code == 0
    # the element count given for bytes is wrong, and said to be the element count
    r = answer("alexnet", "conv1", "out_bytes", "290400")
    assert r.exit_code == 1 and "element count" in r.output


def test_eecs_kilobytes():
    # EECS 498 feeds torchvision's AlexNet 227: conv1 (227 + 2*2 - 11)/4 + 1 = 56, 64*56*56 = 200,704
    # elements, x 4 B = 802,816 B = 784 x 1,024 B: its "784 KB"
    r = answer("alexnet_tv", "conv1", "memory", "784 KB", "--input", "3x227x227")
    assert r.exit_code == 0 and "2^10" in r.output
    # at CS231n's AlexNet conv1 (1,161,600 B = 1,134.4 KiB) 784 KB is wrong
    assert answer("alexnet", "conv1", "memory", "784 KB").exit_code == 1


def test_wrong_answers_exit_1_with_the_right_value():
    r = answer("alexnet", "conv1", "out", "27x27x96")
    assert r.exit_code == 1 and r.output.startswith("wrong:") and "55x55x96" in r.output
    r = answer("alexnet", "pool1", "params", "1")
    assert r.exit_code == 1 and ": 0" in r.output.splitlines()[0]
    r = answer("alexnet", "conv1", "out", "290400")  # 55*55*96: the element count, not the shape
    assert r.exit_code == 1 and "number of elements" in r.output
    r = answer("alexnet", "conv1", "params", "35K FLOP")
    assert r.exit_code == 1 and "FLOPs" in r.output


def test_answer_shows_the_arithmetic():
    r = answer("alexnet", "conv1", "out", "55x55x96")
    assert "(227 - 11 + 2*0)/4 + 1 = 55" in r.output
    r = answer("alexnet", "conv1", "params", "35K")
    assert "params = 11*11*3*96 + 96 = 34,944" in r.output
    r = answer("alexnet", "conv1", "macs", "1.1e8")
    assert "MACs = 55*55*96 * 11*11*3 = 105,415,200" in r.output


def test_pooling_and_receptive_field():
    assert answer("alexnet", "pool1", "params", "0").exit_code == 0
    assert answer("alexnet", "POOL1", "out", "27x27x96").exit_code == 0  # the lecture's capitals
    assert answer("alexnet", "conv1", "rf", "11").exit_code == 0
    assert answer("alexnet", "conv1", "receptive_field", "11x11").exit_code == 0
    assert answer("alexnet", "pool1", "rf", "19").exit_code == 0  # 11 + (3 - 1)*4


def test_ranges_blocks_and_the_whole_network():
    # conv1..pool2 sums conv1, pool1, norm1, conv2, pool2: 34,944 + 614,656 = 649,600 params
    r = answer("alexnet", "conv1..pool2", "params", "649,600")
    assert r.exit_code == 0, r.output
    assert answer("alexnet", "conv1..pool2", "params", "650K").exit_code == 0
    # the whole network: 34,944 + 614,656 + 885,120 (3*3*256*384 + 384) + 1,327,488 (3*3*384*384 + 384)
    # + 884,992 (3*3*384*256 + 256) + 37,752,832 (9,216*4,096 + 4,096) + 16,781,312 (4,096^2 + 4,096)
    # + 4,097,000 (4,096*1,000 + 1,000) = 62,378,344
    assert answer("alexnet", "total", "params", "62,378,344").exit_code == 0
    assert answer("alexnet", "total", "params", "62M").exit_code == 0
    assert answer("alexnet", "total", "params", "60M").exit_code == 1  # 62.4M to the nearest million is 62M
    # three stacked 3x3 convs see 1 + 2 + 2 + 2 = 7 pixels of their input
    assert answer("alexnet", "conv3..conv5", "rf", "7").exit_code == 0
    # VGG-16: conv1_1 3, conv1_2 5, pool1 6 (jump 2), conv2_1 10, conv2_2 14, pool2 16 (jump 4),
    # conv3_1 24, conv3_2 32, conv3_3 40 on the network input; the stack's own field is 7
    r = answer("vgg16", "conv3_1..conv3_3", "rf", "40")
    assert r.exit_code == 1 and "network input" in r.output
    # a branch of GoogLeNet's inception_3a: 3x3/reduce 96 1x1 filters on 192x28x28:
    # 28*28*96 * 192 = 14,450,688; 3x3/conv_3x3 128 3x3 filters on 96: 28*28*128 * 3*3*96 = 86,704,128
    # sum 101,154,816
    assert answer("googlenet", "inception_3a/3x3", "macs", "101,154,816").exit_code == 0
    assert answer("googlenet", "inception_3a/3x3", "macs", "101M").exit_code == 0


@pytest.mark.parametrize("args, message", [
    (("alexnet", "conv1", "params", "abc"), "cannot read 'abc'"),
    (("alexnet", "conv1", "out", "abc"), "cannot read 'abc' as a shape"),
    (("alexnet", "conv9", "params", "1"), "no layer or block 'conv9'"),
    (("alexnet", "conv1", "colour", "1"), "unknown quantity 'colour'"),
    (("alexnet", "pool2..conv1", "params", "1"), "comes before"),
    (("no_such_net", "conv1", "params", "1"), "no_such_net"),
])
def test_bad_input_exits_2(args, message):
    r = answer(*args)
    assert r.exit_code == 2 and message in r.stderr, r.stderr


def test_answer_exit_codes_from_a_real_process():
    def run(*args):
        return subprocess.run([sys.executable, "-m", "archcalc", "answer", *args], capture_output=True, text=True,
                              cwd=REPO)
    assert run("alexnet", "conv1", "params", "35K").returncode == 0
    wrong = run("alexnet", "conv1", "params", "30K")
    assert wrong.returncode == 1 and "34,944" in wrong.stdout
    assert run("alexnet", "conv1", "params", "thirty").returncode == 2


# ---------------------------------------------------------------- explain


def test_explain_plugs_the_numbers_into_the_formulas():
    r = cli("explain", "alexnet", "conv1")
    assert r.exit_code == 0, r.output
    out = r.output
    for line in (
        "(227 - 11 + 2*0)/4 + 1 = 55",  # output size per axis
        "params = 11*11*3*96 + 96 = 34,944",
        "MACs = 55*55*96 * 11*11*3 = 105,415,200",
        "FLOPs = 2 x MACs = 210,830,400",
        "96*55*55 = 290,400 elements x 4 B (fp32) = 1,161,600 B = 1.16 MB",  # memory at the dtype
        "RF = 1 + (11 - 1)*1 = 11",
    ):
        assert line in out, (line, out)
    # what backward keeps and why: conv1 keeps its input (3*227*227 = 154,587) for the weight
    # gradient, and its in-place ReLU keeps the output (290,400)
    assert "input (3x227x227 = 154,587)" in out and "weight gradient" in out
    assert "output (96x55x55 = 290,400)" in out and "ReLU" in out


def test_explain_dtype_and_batch():
    # 290,400 elements x 2 B x batch 8 = 4,646,400 B
    r = cli("explain", "alexnet", "conv1", "--dtype", "fp16", "--batch", "8")
    assert "x 2 B (fp16) x batch 8 = 4,646,400 B" in r.output


def test_explain_pool_and_range():
    r = cli("explain", "alexnet", "pool1")
    assert "(55 - 3 + 2*0)/2 + 1 = 27" in r.output and "params = 0" in r.output
    assert "argmax indices" in r.output  # max pooling keeps where each maximum was
    r = cli("explain", "alexnet", "conv1..pool2")
    assert "params = 34,944 (conv1) + 614,656 (conv2) = 649,600" in r.output
    r = cli("explain", "vgg16", "conv3_1..conv3_3")
    assert "RF = 1 + (3 - 1)*1 + (3 - 1)*1 + (3 - 1)*1 = 7" in r.output
    r = cli("explain", "googlenet", "inception_3a/3x3")
    assert "MACs = 28*28*128 * 3*3*96 = 86,704,128" in r.output
    assert "= 101,154,816" in r.output
    assert cli("explain", "alexnet", "nope").exit_code == 2


# ---------------------------------------------------------------- quiz, through a real terminal

# The lecture's questions on AlexNet, answered by hand (see the module docstring).
HAND = {
    ("conv1", "output volume"): "55x55x96",
    ("conv1", "parameters"): "35K",  # 11*11*3*96 + 96 = 34,944, as the slide rounds it
    ("conv1", "memory"): "290,400",  # 55*55*96
    ("conv1", "MACs"): "105,415,200",  # 55*55*96 * 11*11*3
    ("pool1", "output volume"): "27x27x96",  # (55 - 3)/2 + 1 = 27
    ("pool1", "parameters"): "0",
    ("conv3..conv5", "receptive field"): "7",  # 1 + (3 - 1) * 3
}
# What a wrong answer's reply shows as the right one.
SHOWN = {
    ("conv1", "output volume"): "55x55x96", ("conv1", "parameters"): "34,944", ("conv1", "memory"): "290,400",
    ("conv1", "MACs"): "105,415,200", ("pool1", "output volume"): "27x27x96", ("pool1", "parameters"): "pool1: 0",
    ("conv3..conv5", "receptive field"): "is 7",
}
WRONG = {"output volume": "1x1x1", "parameters": "1", "memory": "1", "MACs": "1", "receptive field": "1"}


def _topic(description: str, ask: str) -> tuple[str, str]:
    if "three stacked 3x3" in description:
        first, last = re.match(r"(\w+), \w+ and (\w+)", description).groups()
        return f"{first}..{last}", "receptive field"
    layer = description.split(":", 1)[0]
    for words, topic in (("output volume", "output volume"), ("parameters", "parameters"),
                         ("numbers does its output hold", "memory"), ("multiply-adds", "MACs"),
                         ("receptive field", "receptive field")):
        if words in ask:
            return layer, topic
    raise AssertionError(f"unexpected question: {description} / {ask}")


def _spawn(*args):
    pexpect = pytest.importorskip("pexpect")
    child = pexpect.spawn(sys.executable, ["-m", "archcalc", "quiz", *args], cwd=str(REPO), encoding="utf-8",
                          timeout=30, env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1", "TERM": "dumb"})
    return pexpect, child


def test_quiz_in_a_terminal_judges_and_scores():
    pexpect, child = _spawn("alexnet", "--seed", "1", "--count", "3")
    child.expect(r"3 questions \(seed 1")
    asked = []
    for i in (1, 2, 3):
        child.expect(rf"Question {i} of 3\r\n(.*?)\r\n(.*?)\r\n> ")
        layer, topic = _topic(child.match.group(1), child.match.group(2))
        asked.append((layer, topic))
        if i == 2:  # one wrong answer: judged wrong, with the right value shown
            child.sendline(WRONG[topic])
            child.expect(r"\r\nwrong: ([^\r]*)\r\n")
            assert SHOWN[(layer, topic)] in child.match.group(1)
        else:
            child.sendline(HAND[(layer, topic)])
            child.expect(r"\r\nright: ")
    child.expect(r"Score: 2/3")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    # --seed reproduces the quiz: the teacher's key has the same questions in the same order
    key = cli("quiz", "alexnet", "--seed", "1", "--count", "3", "--answers-key").output
    topics = re.findall(r"^## \d+\. (.+)$", key, flags=re.M)
    assert [t.split(":")[0] for t in topics] == [layer for layer, _ in asked]


def test_quiz_in_a_terminal_retries_unreadable_answers_and_stops_on_q():
    pexpect, child = _spawn("alexnet", "--seed", "1", "--count", "3")
    child.expect(r"Question 1 of 3\r\n(.*?)\r\n(.*?)\r\n> ")
    layer, topic = _topic(child.match.group(1), child.match.group(2))
    child.sendline("no idea")
    child.expect("cannot judge that")
    child.expect("> ")
    child.sendline(HAND[(layer, topic)])
    child.expect("right: ")
    child.expect("Question 2 of 3")
    child.expect("> ")
    child.sendline("q")
    child.expect(r"Score: 1/1 \(stopped after 1 of 3\)")
    child.expect(pexpect.EOF)


def test_quiz_covers_the_lecture_questions():
    # with as many questions as AlexNet has lecture questions, every one of them is asked
    key = cli("quiz", "alexnet", "--seed", "7", "--count", str(len(HAND)), "--answers-key").output
    topics = re.findall(r"^## \d+\. (.+)$", key, flags=re.M)
    assert len(topics) == len(HAND)
    assert "conv3..conv5: receptive field of three stacked 3x3 convs" in topics
    # GoogLeNet has a branch question: MACs of a branch of its first Inception module
    key = cli("quiz", "googlenet", "--seed", "1", "--count", "12", "--answers-key").output
    assert re.search(r"^## \d+\. inception_3a/\w+: MACs of a branch$", key, flags=re.M)


def test_answers_key_is_markdown_with_answers():
    r = cli("quiz", "alexnet", "--seed", "1", "--count", "3", "--answers-key")
    assert r.exit_code == 0
    key = r.output
    assert key.startswith("# archcalc quiz: alexnet\n")
    assert "`archcalc quiz alexnet --seed 1 --count 3`" in key
    sections = re.split(r"^## ", key, flags=re.M)[1:]
    assert len(sections) == 3
    for s in sections:
        assert "**Answer:** " in s and "```text\n" in s and s.count("```") == 2
        assert re.search(r"`archcalc answer alexnet \S+ \w+ ANSWER`", s)
    # each section's answer is the hand value: the conv1 output is 55x55x96
    by_topic = {s.split("\n", 1)[0].split(". ", 1)[1]: s for s in sections}
    if "conv1: output volume" in by_topic:
        assert "**Answer:** 55x55x96 (HxWxC) = 96x55x55 (CxHxW)" in by_topic["conv1: output volume"]
    if "conv1: parameters" in by_topic:
        assert "**Answer:** 34,944" in by_topic["conv1: parameters"]
    # the same seed gives the same key
    assert cli("quiz", "alexnet", "--seed", "1", "--count", "3", "--answers-key").output == key


def test_commands_are_listed_in_help():
    r = cli("--help")
    for command in ("answer", "explain", "quiz"):
        assert command in r.output


# ---------------------------------------------------------------- the documented sessions are real output


def _sessions(path: Path):
    """Each `$ archcalc ...` command in a ```text block of a Markdown file, with the lines shown
    under it (up to the next command or the end of the block)."""
    sessions, inside, current = [], False, None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            inside = line.strip() == "```text" if not inside else False
            current = None
            continue
        if not inside:
            continue
        if line.startswith("$ archcalc "):
            current = (line[2:], [])
            sessions.append(current)
        elif current is not None:
            current[1].append(line)
    return sessions


def _assert_shown_in_order(shown: list[str], actual: str, where: str):
    """Every shown line (blank lines and '...' elisions aside) is a line of the real output, in order."""
    lines = [line.rstrip() for line in actual.replace("\r\n", "\n").splitlines()]
    at = 0
    for line in shown:
        if not line.strip() or line.strip() == "...":
            continue
        try:
            at = lines.index(line.rstrip(), at) + 1
        except ValueError:
            raise AssertionError(f"{where}: {line!r} is not in the real output (in order):\n{actual}") from None


@pytest.mark.parametrize("doc", ["README.md", "docs/teaching.md"])
def test_documented_sessions_are_real_output(doc):
    import shlex

    sessions = _sessions(REPO / doc)
    commands = [c.split()[1] for c, _ in sessions]
    assert {"answer", "explain"} <= set(commands) and (doc != "README.md" or "quiz" in commands)
    for command, shown in sessions:
        args = shlex.split(command)[1:]
        if args[0] == "quiz":
            pexpect, child = _spawn(*args[1:])
            child.logfile_read = transcript = io.StringIO()
            for typed in (line[2:] for line in shown if line.startswith("> ")):
                child.expect("> ")
                child.sendline(typed)
            child.expect(pexpect.EOF)
            actual = transcript.getvalue()
        else:
            actual = cli(*args).output
        _assert_shown_in_order(shown, actual, f"{doc}: {command}")


# ---------------------------------------------------------------- --format json


def _json(*args):
    import json

    r = cli(*args)
    return r.exit_code, json.loads(r.output)


def test_answer_json_has_the_verdict_and_the_exact_figure():
    code, d = _json("answer", "alexnet", "conv1", "params", "35K", "--format", "json")
    assert code == 0 and d["ok"] is True and d["key"] == "params" and d["exact"] == CONV1_PARAMS
    assert d["spec"] == "alexnet" and d["layer"] == "conv1" and d["kind"] == "layer" and d["answer"] == "35K"
    assert d["values"]["weight_params"] == CONV1_WEIGHTS and d["values"]["macs"] == CONV1_MACS
    assert d["reply"][0].startswith("right: 35K is 34,944") and "params = 11*11*3*96 + 96 = 34,944" in d["arithmetic"][-1]
    code, d = _json("answer", "alexnet", "conv1", "params", "30K", "--format", "json")
    assert code == 1 and d["ok"] is False and "is 35K, not 30K" in d["reply"][1]
    # "memory" is decided by the unit: 1.1MB is bytes, 290,400 x 4 B = 1,161,600 B (1.108 MiB)
    code, d = _json("answer", "alexnet", "conv1", "memory", "1.1MB", "--format", "json")
    assert code == 0 and d["key"] == "out_bytes" and d["exact"] == CONV1_OUT_BYTES
    code, d = _json("answer", "alexnet", "conv1", "out", "55x55x96", "--format", "json")
    assert code == 0 and d["exact"] == [96, 55, 55]  # (227 - 11)/4 + 1 = 55, CxHxW
    # the range's own field: three stacked 3x3 convs, 1 + 2 + 2 + 2 = 7
    code, d = _json("answer", "alexnet", "conv3..conv5", "rf", "9", "--format", "json")
    assert code == 1 and d["exact"] == [7, 7] and d["kind"] == "range" and d["rows"] == ["conv3", "conv4", "conv5"]


def test_answer_json_bad_input_is_one_line_exit_2():
    r = cli("answer", "alexnet", "conv9", "params", "1", "--format", "json")
    assert r.exit_code == 2 and r.output.startswith("archcalc: no layer or block 'conv9'")


def test_explain_json_has_the_text_sections():
    import json

    code, d = _json("explain", "alexnet", "conv1", "--format", "json")
    assert code == 0 and d["layer"] == "conv1" and d["values"]["params"] == CONV1_PARAMS
    assert "  H, W: (227 - 11 + 2*0)/4 + 1 = 55" in d["sections"]["shape"]
    assert "  MACs = 55*55*96 * 11*11*3 = 105,415,200" in d["sections"]["macs"]
    text = cli("explain", "alexnet", "conv1").output
    rebuilt = "\n\n".join(["\n".join(d["header"])] + ["\n".join(lines) for lines in d["sections"].values()]) + "\n"
    assert rebuilt == text  # the same lines, in the same order, as the text
    # a range: conv1..conv2's params are 34,944 + 614,656 (5*5*96*256 + 256) = 649,600
    d = json.loads(cli("explain", "alexnet", "conv1..conv2", "--format", "json").output)
    assert d["kind"] == "range" and d["values"]["params"] == 649600 and d["rows"] == ["conv1", "pool1", "norm1", "conv2"]


def test_answers_key_json_matches_the_markdown():
    code, d = _json("quiz", "alexnet", "--seed", "2", "--count", "4", "--answers-key", "--format", "json")
    assert code == 0 and d["seed"] == 2 and d["count"] == 4 and len(d["questions"]) == 4
    md = cli("quiz", "alexnet", "--seed", "2", "--count", "4", "--answers-key").output
    for q in d["questions"]:
        assert f"## {q['number']}. {q['topic']}" in md and f"**Answer:** {q['answer']}" in md
        assert f"`{q['check']}`" in md
        # each question's (LAYER, QUANTITY) is what `archcalc answer` judges, against the same exact figure
        exact = q["exact"]
        given = "x".join(map(str, exact)) if isinstance(exact, list) and q["quantity"] == "out" else (
            str(exact[0]) if isinstance(exact, list) else str(exact))
        r = answer("alexnet", q["layer"], q["quantity"], given)
        assert r.exit_code == 0, (q, r.output)
    conv1 = next(q for q in d["questions"] if q["layer"] == "conv1" and q["quantity"] == "out")
    assert conv1["exact"] == [96, 55, 55]


def test_quiz_json_needs_the_answers_key():
    r = cli("quiz", "alexnet", "--format", "json")
    assert r.exit_code == 2 and "--answers-key" in r.output
