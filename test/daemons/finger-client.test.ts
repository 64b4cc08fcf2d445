import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { escapeControls, renderFingerOutput } from '../../src/daemons/index.js';

test('renderFingerOutput never lets a control byte through but tab and newline (property)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2000 }), (bytes) => {
      const out = renderFingerOutput(bytes);
      for (const b of out) assert.ok(b === 0x09 || b === 0x0a || (b >= 0x20 && b !== 0x7f && !(b >= 0x80 && b < 0xa0)), `byte ${b}`);
    }),
  );
});

test('renderFingerOutput keeps printable ASCII and turns CRLF into LF (property)', () => {
  const line = fc.string({ maxLength: 80, unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)) });
  fc.assert(
    fc.property(fc.array(line, { maxLength: 20 }), (lines) => {
      const wire = Buffer.from(lines.map((l) => `${l}\r\n`).join(''), 'latin1');
      assert.equal(renderFingerOutput(wire).toString('latin1'), lines.map((l) => `${l}\n`).join(''));
    }),
  );
});

test('escapeControls leaves no C0/C1 control or bidi override in the text (property)', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 500, unit: 'binary' }), (s) => {
      const out = escapeControls(s);
      assert.ok(!/[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]/u.test(out), JSON.stringify(out));
    }),
  );
});
