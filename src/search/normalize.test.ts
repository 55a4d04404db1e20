import { normalizeString } from './normalize';

describe('normalizeString', () => {
  it.each([
    ['Élodie', 'elodie'],
    ['  Jean-François   DUPONT ', 'jean-francois dupont'],
    ['Zoë\tBrontë\n', 'zoe bronte'],
    ['ÅNGSTRÖM', 'angstrom'],
    ['Ça', 'ca'],
    ['e\u0301cole', 'ecole'], // already decomposed
    ['', ''],
    ['   ', ''],
  ])('%j -> %j', (input, expected) => {
    expect(normalizeString(input)).toBe(expected);
  });

  it('is idempotent', () => {
    const once = normalizeString('  Hélène  MÜLLER ');
    expect(normalizeString(once)).toBe(once);
  });
});
