#!/usr/bin/env python3
"""Golden fixtures for model/tokenizer and model/chat_template (HF tokenizers 0.23.2, transformers 5.17.0).

Writes under OUT/tokenizer/:
  encode_<name>.jsonl   {"text", "ids", "ids_special", "decoded", "nfc"} per corpus line, <name> in qwen3,
                        llama3, bytelevel (ids from tokenizers.Tokenizer; "ids_auto" from AutoTokenizer too)
  decode_<name>.jsonl   {"ids", "text", "text_skip"}: decode with/without skip_special_tokens
  chat.jsonl            {"tokenizer", "template", "messages", "add_generation_prompt", "text"}: the real jinja
                        templates rendered by transformers' apply_chat_template
  bytelevel/            the built-in byte-level tokenizer written here independently of the C++ writer
                        (tests compare the two JSON documents)
Skips the work when the outputs exist (DONE holds this script's sha256). Offline: reads /work/shared/data (or $RLVR_SHARED_DATA).
Usage: make_tokenizer.py --out DIR
"""
import argparse
import hashlib
import json
import os
import random
import sys
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.environ.get("RLVR_SHARED_DATA", os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "data")))

TRICKY = [
    "Hello world", "Hello, World!", "HELLO WORLD'S BEST", "I'LL DO IT. YOU'RE RIGHT, WE'VE WON, HE'D GO, I'M OK",
    "we'll they're I'm you've he'd don't can't it's", "'S 'LL 'RE 'VE 'M 'D 'T", "ſ's ſtuff",
    "1234567890123456789", "3.14159265358979", "$1,000,000.00", "12 345 678", "x = 10^{100}", "0.000001",
    "٣٤٥ ۱۲۳ ⅣⅤⅫ ①②③ ½¼ x²+y³", "你好，世界！这是一个测试。", "こんにちは世界、カタカナ", "안녕하세요 세계",
    "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया", "สวัสดีชาวโลก", "Привет, мир! ЁЖИК", "Ελληνικά ΣΣς",
    "😀👍🏽👨‍👩‍👧‍👦 🏳️‍🌈 🇩🇪🇫🇷 ❤️‍🔥", "emoji😀inside😀words", "e\u0301 cafe\u0301 A\u030a \u1100\u1161\u11a8",
    "\u2126 \u212b \u00c5 \u0041\u030a", "ﬁ ﬂ ｆｕｌｌｗｉｄｔｈ １２３", "a\r\nb\r\n\r\nc", "\r\n", "\n", "\n\n\n", " ", "   ",
    "a  b   c    d", "trailing spaces   ", "   leading spaces", "\ttab\tseparated\t", "\t\t  \t mixed \t\n",
    "line1\n\n\nline2\n", " \n \n ", "end with newline\n", "a\u00a0b\u3000c\u2028d\u0085e\u200bf\u2009g\u202fh",
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", "<|endoftext|>text<|endoftext|>",
    "x<|im_end|>y", " <|im_end|> ", "<think>\nreason\n</think>\n\nanswer", "<|im_start", "<|im_end|", "<||>",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>", "<|eot_id|><|eot_id|>",
    "<|reserved_special_token_5|>", "<tool_call>{}</tool_call>",
    "$\\frac{a}{b} + \\sqrt{x^2+1} = \\int_0^\\infty e^{-x}\\,dx$", "\\boxed{42}", "\\[ \\sum_{k=1}^{n} k = \\frac{n(n+1)}{2} \\]",
    "\\begin{align*} x &= 2 \\\\ y &= 3 \\end{align*}", "$$\\left(\\frac{1}{2}\\right)^{-3}$$",
    "def f(x):\n    return x**2  # square\n", "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}\n",
    "if (a && b || !c) { return -1; } else { x->y = *p; }", "    indented = True\n        more = False",
    "https://example.com/path?q=1&r=2#frag", "user@example.com", "C:\\Users\\name\\file.txt",
    "\u0000 nul \u0007 bell \u007f del \u001b[31mred", "ǅungla ǆ", "İstanbul ıi", "straße STRASSE",
    "a" * 3000, "ab" * 1000, "9" * 500, " " * 300, "\n" * 50, "é" * 400, "😀" * 100, "-" * 200 + "\n" + "=" * 200,
    "The quick brown fox jumps over the lazy dog. " * 20, "",
]


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


CHATML_JINJA = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def write_bytelevel(d, specials=("<|endoftext|>", "<|im_start|>", "<|im_end|>"), eos="<|im_end|>", pad="<|endoftext|>"):
    """The same documents as Tokenizer::write_byte_level (model/tokenizer_writer.cpp)."""
    os.makedirs(d, exist_ok=True)
    b2u = bytes_to_unicode()
    vocab = {b2u[b]: b for b in range(256)}
    added = [{"id": 256 + i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, s in enumerate(specials)]
    decoder = {str(256 + i): {"content": s, "lstrip": False, "normalized": False, "rstrip": False,
                              "single_word": False, "special": True} for i, s in enumerate(specials)}

    def bl(trim, regex):
        return {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": trim, "use_regex": regex}

    tok = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
           "pre_tokenizer": bl(True, True), "post_processor": bl(False, False), "decoder": bl(True, True),
           "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                     "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                     "vocab": vocab, "merges": []}}
    cfg = {"tokenizer_class": "PreTrainedTokenizerFast", "added_tokens_decoder": decoder, "bos_token": None,
           "eos_token": eos, "pad_token": pad, "unk_token": None, "add_bos_token": False, "add_eos_token": False,
           "clean_up_tokenization_spaces": False, "model_max_length": 1048576}
    if "<|im_start|>" in specials and "<|im_end|>" in specials:
        cfg["chat_template"] = CHATML_JINJA
    with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False, indent=2)
    with open(os.path.join(d, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, ensure_ascii=False, indent=2)


def corpus():
    texts = list(TRICKY)
    rng = random.Random(1234)

    def load(name):
        with open(os.path.join(SHARED, name), encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    math = load("math500_test.jsonl")
    gsm = load("gsm8k_train.jsonl")
    for r in math:
        texts.append(r["problem"])
        if r.get("solution"):
            texts.append(r["solution"])
    for r in rng.sample(gsm, 1000):
        texts.append(r["problem"])
        texts.append(r["solution"])
    return texts


CONVERSATIONS = [
    [{"role": "user", "content": "What is 2+2?"}],
    [{"role": "system", "content": "You are a helpful math assistant."},
     {"role": "user", "content": "Solve $x^2 = 4$. Put the answer in \\boxed{}."}],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"},
     {"role": "user", "content": "Compute 7*6."}],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}],
    [{"role": "user", "content": "2+2?"},
     {"role": "assistant", "content": "<think>\nAdd them.\n</think>\n\nThe answer is 4."}],
    [{"role": "user", "content": "  padded content \n\t"}],
    [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "<think>\nEasy.\n</think>\n\n4"},
     {"role": "user", "content": "3+3?"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "名前は？ 😀"}],
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    out = os.path.join(args.out, "tokenizer")
    done = os.path.join(out, "DONE")
    with open(os.path.abspath(__file__), "rb") as f:
        stamp = hashlib.sha256(f.read()).hexdigest()  # regenerate when this script changes
    if os.path.exists(done) and open(done).read().strip() == stamp:
        print(f"make_tokenizer: {out} is up to date, skipping")
        return 0
    tok_dir = os.path.join(SHARED, "tokenizers")
    if not os.path.isdir(tok_dir):
        print(f"make_tokenizer: {tok_dir} missing; no fixtures written", file=sys.stderr)
        return 0
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    os.makedirs(out, exist_ok=True)
    bl_dir = os.path.join(out, "bytelevel")
    write_bytelevel(bl_dir)
    dirs = {"qwen3": os.path.join(tok_dir, "qwen3"), "llama3": os.path.join(tok_dir, "llama3"), "bytelevel": bl_dir}
    texts = corpus()
    rng = random.Random(99)
    for name, d in dirs.items():
        tk = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
        auto = AutoTokenizer.from_pretrained(d)
        norm_nfc = name == "qwen3"
        with open(os.path.join(out, f"encode_{name}.jsonl"), "w", encoding="utf-8") as f:
            for t in texts:
                enc = tk.encode(t, add_special_tokens=False).ids
                rec = {"text": t, "ids": enc, "ids_special": tk.encode(t, add_special_tokens=True).ids,
                       "ids_auto": auto(t, add_special_tokens=False)["input_ids"],
                       "decoded": tk.decode(enc, skip_special_tokens=False),
                       "nfc": unicodedata.normalize("NFC", t) if norm_nfc else t}
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        vocab = tk.get_vocab_size(with_added_tokens=True)
        specials = [i for i in range(vocab) if tk.id_to_token(i) is not None and i >= (vocab - 300)]
        with open(os.path.join(out, f"decode_{name}.jsonl"), "w", encoding="utf-8") as f:
            seqs = []
            for _ in range(300):  # random ids, incl. specials
                seqs.append([rng.randrange(vocab) for _ in range(rng.randint(1, 24))])
            for _ in range(100):
                seqs.append([rng.choice(specials) for _ in range(rng.randint(1, 5))] + [rng.randrange(vocab)])
            for t in ["héllo 世界 😀👨‍👩‍👧", "∑ é\u0301 ½", "<|im_end|>ok"]:
                ids = tk.encode(t).ids
                for k in range(len(ids) + 1):  # prefixes and suffixes cut multi-byte characters
                    seqs.append(ids[:k])
                    seqs.append(ids[k:])
            for ids in seqs:
                f.write(json.dumps({"ids": ids, "text": tk.decode(ids, skip_special_tokens=False),
                                    "text_skip": tk.decode(ids, skip_special_tokens=True)}, ensure_ascii=False) + "\n")
    with open(os.path.join(out, "chat.jsonl"), "w", encoding="utf-8") as f:
        for name, d in dirs.items():
            auto = AutoTokenizer.from_pretrained(d)
            for conv in CONVERSATIONS:
                for gen in (True, False):
                    for thinking in (None, False):
                        if name != "qwen3" and thinking is not None:
                            continue
                        if name == "llama3" and not gen:
                            continue  # the Llama 3 base template always appends the assistant header
                        kw = {} if thinking is None else {"enable_thinking": thinking}
                        text = auto.apply_chat_template(conv, tokenize=False, add_generation_prompt=gen, **kw)
                        tmpl = {"qwen3": "qwen3" if thinking is None else "qwen3-nothink", "llama3": "llama3",
                                "bytelevel": "chatml"}[name]
                        f.write(json.dumps({"tokenizer": name, "template": tmpl, "messages": conv,
                                            "add_generation_prompt": gen, "text": text}, ensure_ascii=False) + "\n")
    with open(done, "w") as f:
        f.write(stamp + "\n")
    print(f"make_tokenizer: wrote {out} ({len(texts)} texts)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
