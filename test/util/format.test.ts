import { describe, expect, it } from 'vitest';
import { errorMessage, plural, spiHex } from '../../src/util/format.js';

describe('the shared text formatting of src/util/format.ts', () => {
  it('prints SPIs as 8 hex digits, also those with the top bit set', () => {
    expect(spiHex(0xc0ffee)).toBe('00c0ffee');
    expect(spiHex(0xffffffff)).toBe('ffffffff');
    expect(spiHex(-1)).toBe('ffffffff');
  });

  it('counts a noun in the singular only for one', () => {
    expect(plural(0, 'problem')).toBe('0 problems');
    expect(plural(1, 'configuration problem')).toBe('1 configuration problem');
    expect(plural(2, 'octet')).toBe('2 octets');
    expect(plural(2, 'child', 'children')).toBe('2 children');
  });

  it('takes the message of an Error and the text of anything else thrown', () => {
    expect(errorMessage(new Error('EPERM'))).toBe('EPERM');
    expect(errorMessage('plain')).toBe('plain');
  });
});
