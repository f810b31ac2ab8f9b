// SPDX-License-Identifier: Apache-2.0
// esdk-interop.js: encrypts or decrypts a file with the stock AWS Encryption SDK for
// JavaScript and its raw AES keyring (AES-256-GCM wrapping), suite 0x0478, for
// tests/integration/test-envelope-esdk.c.
//   node esdk-interop.js encrypt KEYFILE NS NAME IN OUT FRAMELEN [k=v ...]
//   node esdk-interop.js decrypt KEYFILE NS NAME IN OUT 0 [k=v ...]   (pairs must match)
'use strict';
const fs = require('fs');
const {
  buildClient, CommitmentPolicy, RawAesKeyringNode, RawAesWrappingSuiteIdentifier,
  AlgorithmSuiteIdentifier,
} = require('@aws-crypto/client-node');

async function main() {
  const [mode, keyFile, keyNamespace, keyName, input, output, frame, ...pairs] = process.argv.slice(2);
  const { encrypt, decrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
  const keyring = new RawAesKeyringNode({
    keyName, keyNamespace,
    unencryptedMasterKey: new Uint8Array(fs.readFileSync(keyFile)),
    wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
  });
  const context = {};
  for (const p of pairs) {
    const i = p.indexOf('=');
    context[p.slice(0, i)] = p.slice(i + 1);
  }
  const data = fs.readFileSync(input);
  if (mode === 'encrypt') {
    const { result } = await encrypt(keyring, data, {
      encryptionContext: context,
      suiteId: AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY,
      frameLength: Number(frame),
    });
    fs.writeFileSync(output, result);
  } else {
    const { plaintext, messageHeader } = await decrypt(keyring, data);
    for (const [k, v] of Object.entries(context)) {
      if (messageHeader.encryptionContext[k] !== v) throw new Error(`context ${k} mismatch`);
    }
    if (messageHeader.suiteId !== 0x0478) throw new Error(`suite ${messageHeader.suiteId}`);
    fs.writeFileSync(output, plaintext);
  }
}

main().catch((e) => { console.error(`esdk-interop: ${e.message}`); process.exit(1); });
