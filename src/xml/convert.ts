import { decimalTexts } from '../json/decimals';
import { writeXml } from './writeXml';

/**
 * FHIR XML of a resource given as FHIR JSON text (a stored resource, a search page): the
 * text is parsed once, and the decimals whose digits a number would lose are read from it.
 */
export function jsonTextToXml(text: string, pretty = false): string {
  return writeXml(JSON.parse(text) as Record<string, unknown>, decimalTexts(text), { pretty });
}

/** FHIR XML of a resource built by the server (an OperationOutcome): no decimal text to keep. */
export function resourceToXml(resource: object, pretty = false): string {
  return writeXml(resource as Record<string, unknown>, undefined, { pretty });
}
