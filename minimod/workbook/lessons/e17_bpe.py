TEXT = """Lesson 17: Tokenization -- byte-level BPE merges

The idea
A language model reads integers, not text. A tokenizer maps text to token ids and back:
    encode("the cat") -> [262, 3797]        decode([262, 3797]) -> "the cat"
One id per character makes long sequences; one id per word cannot spell a word it never saw.
Byte-pair encoding (BPE, Sennrich et al. 2016; byte-level in GPT-2) sits between the two.

Bytes first
UTF-8 turns any string into bytes 0-255. Those 256 bytes are the base vocabulary (id = byte
value), so every string -- emoji, Chinese, a NUL character -- can be encoded: a byte-level
tokenizer has no unknown token.

Merges next
Training repeats: count every adjacent pair of ids in the text; take the most frequent pair
(ties: the smallest (first, second), so training is deterministic); give it the next id
(256, 257, …); replace each occurrence of the pair by that id, left to right, never using one id
in two overlapping merges ([9, 9, 9] with (9, 9) -> [256, 9]). Stop at vocab_size ids. The list
of merges, in order, IS the tokenizer.
    vocab[256 + k] = vocab[a] + vocab[b]     for merge k = (a, b)

Pre-tokenization and speed
The text is first split into chunks (words with their leading space, digits, punctuation,
whitespace) by GPT-2's regular expression; pairs are counted and merged inside a chunk only, so
no token glues the end of one word to the next. A text repeats its words: store each distinct
chunk ONCE with its frequency ({byte ids: count}), and count a pair with that weight. After a
merge, only chunks containing the merged pair change: subtract their old pairs' counts, merge,
add the new pairs' counts (``where[pair]`` remembers which chunks hold a pair).

Encoding new text
Apply the learned merges to each chunk's bytes, always the adjacent pair of LOWEST rank (learned
earliest) first -- later merges are built from earlier ones (" th" + "e" needs " th" first).
Decoding concatenates the tokens' bytes and decodes once as UTF-8 (a token may hold half of a
multi-byte character), so decode(encode(s)) == s for every string s.

What you write
count_pairs (weighted pair counts), merge_pair (left-to-right, non-overlapping), learn_merges
(the training loop with incremental counts), apply_merges (encoding one chunk by rank). The
ByteBPETokenizer class that calls them, pretokenize and saving/loading are given.

Classic pitfalls
- Overlapping merges: [9, 9, 9] must become [256, 9], not [256, 256] (lengths then blow up).
- Counting each chunk once instead of frequency times.
- Ties broken by dictionary order: training then depends on insertion order.
- Encoding by applying merges left to right in the text instead of by rank.

Run it
Your BPE learns merges from Python's own documentation (the built-in corpus) and encodes it:
    python -c "if 1:
        from minimod.data import load_corpus
        from exercises.e17_bpe import ByteBPETokenizer
        text = load_corpus()[:50000]
        tok = ByteBPETokenizer.train(text, vocab_size=512)
        ids = tok.encode(text)
        print(len(text.encode()), 'bytes ->', len(ids), 'tokens', tok.decode(ids) == text)
        print([tok.decode([i]) for i in ids[:8]])"
prints 50091 bytes -> 22170 tokens True (256 merges make the text 2.3 times shorter), then the
first tokens: ['The', ' "', 'a', 'ss', 'er', 't', '"', ' state']
(about 15 s).
Next: lesson 18 (The training loop: accumulation, clipping, schedules, evaluation, checkpoints)

Check it: minimod exercises check 17
Try it (python, in the repository folder):
    >>> from exercises.e17_bpe import ByteBPETokenizer, merge_pair
    >>> merge_pair([9, 9, 9], (9, 9), 256)
    [256, 9]
    >>> tok = ByteBPETokenizer.train("low lower lowest " * 10, vocab_size=260)
    >>> [tok.vocab[i] for i in tok.encode(" lowest")]
    [b' lowe', b's', b't']
    >>> tok.decode(tok.encode("héllo 🙂")) == "héllo 🙂"
    True
"""
