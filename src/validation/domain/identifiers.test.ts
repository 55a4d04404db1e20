import { adeliIdNatPsValid, finessFormatValid, luhnValid, rppsIdNatPsValid, sirenValid, siretValid } from './identifiers';

describe('French professional and structure identifiers', () => {
  it('idNatPS: 8 + 11-digit RPPS', () => {
    expect(rppsIdNatPsValid('899700218896')).toBe(true); // test RPPS of the official examples
    expect(rppsIdNatPsValid('89970021889')).toBe(false);
    expect(rppsIdNatPsValid('8997002188960')).toBe(false);
    expect(rppsIdNatPsValid('099700218896')).toBe(false);
    expect(rppsIdNatPsValid('8997002188A6')).toBe(false);
  });

  it('idNatPS: 0 + 9-digit ADELI', () => {
    expect(adeliIdNatPsValid('0751012345')).toBe(true);
    expect(adeliIdNatPsValid('075101234')).toBe(false);
    expect(adeliIdNatPsValid('075101234A')).toBe(false);
    expect(adeliIdNatPsValid('8751012345')).toBe(false);
  });

  it('FINESS: 9 characters, Corsica 2A/2B allowed, format only', () => {
    expect(finessFormatValid('750100018')).toBe(true);
    expect(finessFormatValid('2A0000012')).toBe(true);
    expect(finessFormatValid('2B0000012')).toBe(true);
    expect(finessFormatValid('75010001')).toBe(false);
    expect(finessFormatValid('7501000180')).toBe(false);
    expect(finessFormatValid('2C0000012')).toBe(false);
    expect(finessFormatValid('75010001X')).toBe(false);
  });

  it('Luhn', () => {
    expect(luhnValid('79927398713')).toBe(true);
    expect(luhnValid('79927398710')).toBe(false);
    expect(luhnValid('')).toBe(false);
    expect(luhnValid('12a')).toBe(false);
  });

  it('SIREN: 9 digits + Luhn', () => {
    expect(sirenValid('269200010')).toBe(true);
    expect(sirenValid('732829320')).toBe(true);
    expect(sirenValid('732829321')).toBe(false);
    expect(sirenValid('73282932')).toBe(false);
  });

  it('SIRET: 14 digits + Luhn, La Poste exception', () => {
    expect(siretValid('26920001000016')).toBe(true);
    expect(siretValid('73282932000074')).toBe(true);
    expect(siretValid('26920001000017')).toBe(false);
    expect(siretValid('50000000000000')).toBe(false);
    // La Poste (SIREN 356000000): Luhn, or digit sum divisible by 5
    expect(siretValid('35600000000048')).toBe(true);
    expect(siretValid('35600000009075')).toBe(true);
    expect(siretValid('35600000009093')).toBe(true);
    expect(siretValid('35600000009090')).toBe(false);
    expect(siretValid('2692000100001')).toBe(false);
    expect(siretValid('2692000100001A')).toBe(false);
  });
});
