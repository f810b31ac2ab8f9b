// SPDX-License-Identifier: Apache-2.0
//
// audit-verify checks libexai's audit output with golang.org/x/mod/sumdb/note and
// golang.org/x/mod/sumdb/tlog, code nobody in this project wrote.
//
//	audit-verify DIR
//
// DIR holds what `exaictl audit` printed: vkey, checkpoint (the note), old-checkpoint (an
// earlier note), leaf-N (canonical event bytes), proof-N (inclusion proof of leaf N in the
// checkpoint's tree), oldproof-N (the same in the old checkpoint's tree) and consistency (proof from the old checkpoint's size to the new one).
package main

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "audit-verify: "+format+"\n", args...)
	os.Exit(1)
}

func read(dir, name string) []byte {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		fail("%v", err)
	}
	return b
}

// openCheckpoint verifies a signed checkpoint note and parses the tlog-checkpoint body.
func openCheckpoint(verifiers note.Verifiers, msg []byte) (string, tlog.Tree) {
	n, err := note.Open(msg, verifiers)
	if err != nil {
		fail("note.Open: %v", err)
	}
	lines := strings.SplitN(n.Text, "\n", 4)
	if len(lines) < 4 {
		fail("checkpoint has fewer than 3 lines")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		fail("checkpoint size: %v", err)
	}
	h, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(h) != tlog.HashSize {
		fail("checkpoint root hash is not base64 of 32 bytes")
	}
	var t tlog.Tree
	t.N = size
	copy(t.Hash[:], h)
	return lines[0], t
}

func readProof(dir, name string) []tlog.Hash {
	var p []tlog.Hash
	for _, l := range strings.Split(strings.TrimSpace(string(read(dir, name))), "\n") {
		if l == "" {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(l)
		if err != nil || len(b) != tlog.HashSize {
			fail("%s: %q is not a base64 hash", name, l)
		}
		var h tlog.Hash
		copy(h[:], b)
		p = append(p, h)
	}
	return p
}

func main() {
	if len(os.Args) != 2 {
		fail("usage: audit-verify DIR")
	}
	dir := os.Args[1]
	vkey := strings.TrimSpace(string(read(dir, "vkey")))
	v, err := note.NewVerifier(vkey)
	if err != nil {
		fail("note.NewVerifier: %v", err)
	}
	verifiers := note.VerifierList(v)
	origin, tree := openCheckpoint(verifiers, read(dir, "checkpoint"))
	if origin != v.Name() {
		fail("checkpoint origin %q is not the key's name %q", origin, v.Name())
	}
	_, old := openCheckpoint(verifiers, read(dir, "old-checkpoint"))

	leaves, _ := filepath.Glob(filepath.Join(dir, "leaf-*"))
	if len(leaves) == 0 {
		fail("no leaves")
	}
	for _, lf := range leaves {
		seq, err := strconv.ParseInt(strings.TrimPrefix(filepath.Base(lf), "leaf-"), 10, 64)
		if err != nil {
			fail("%s: bad name", lf)
		}
		data := read(dir, filepath.Base(lf))
		proof := readProof(dir, fmt.Sprintf("proof-%d", seq))
		if err := tlog.CheckRecord(tlog.RecordProof(proof), tree.N, tree.Hash, seq, tlog.RecordHash(data)); err != nil {
			fail("tlog.CheckRecord seq %d in tree %d: %v", seq, tree.N, err)
		}
		// The same leaf in the older tree, when a proof for it was made.
		if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("oldproof-%d", seq))); err == nil {
			op := readProof(dir, fmt.Sprintf("oldproof-%d", seq))
			if err := tlog.CheckRecord(tlog.RecordProof(op), old.N, old.Hash, seq, tlog.RecordHash(data)); err != nil {
				fail("tlog.CheckRecord seq %d in the old tree %d: %v", seq, old.N, err)
			}
		}
		// A changed leaf must fail.
		bad := append([]byte(nil), data...)
		bad[len(bad)/2] ^= 1
		if tlog.CheckRecord(tlog.RecordProof(proof), tree.N, tree.Hash, seq, tlog.RecordHash(bad)) == nil {
			fail("tlog.CheckRecord accepted a changed leaf %d", seq)
		}
	}
	cons := readProof(dir, "consistency")
	if err := tlog.CheckTree(tlog.TreeProof(cons), tree.N, tree.Hash, old.N, old.Hash); err != nil {
		fail("tlog.CheckTree %d -> %d: %v", old.N, tree.N, err)
	}
	fmt.Printf("ok: checkpoint of %s size %d signed by %s; %d inclusion proofs; consistency from size %d\n",
		origin, tree.N, vkey, len(leaves), old.N)
}
