// The part of sax's API the FHIR XML reader uses (the package ships no types).
declare module 'sax' {
  namespace sax {
  export interface QualifiedAttribute {
    name: string;
    value: string;
    prefix: string;
    local: string;
    uri: string;
  }
  export interface QualifiedTag {
    name: string;
    prefix: string;
    local: string;
    uri: string;
    attributes: Record<string, QualifiedAttribute>;
    isSelfClosing: boolean;
  }
  export interface SAXOptions {
    xmlns?: boolean;
    strictEntities?: boolean;
    position?: boolean;
    trim?: boolean;
    normalize?: boolean;
  }
  export class SAXParser {
    line: number;
    column: number;
    position: number;
    startTagPosition: number;
    onerror: (e: Error) => void;
    ontext: (t: string) => void;
    oncdata: (t: string) => void;
    ondoctype: (d: string) => void;
    onsgmldeclaration: (d: string) => void;
    onprocessinginstruction: (p: { name: string; body: string }) => void;
    onopentag: (tag: QualifiedTag) => void;
    onclosetag: (name: string) => void;
    oncomment: (c: string) => void;
    write(s: string): SAXParser;
    close(): SAXParser;
  }
  export function parser(strict: boolean, opt?: SAXOptions): SAXParser;
  export let MAX_BUFFER_LENGTH: number;
  }
  export = sax;
}
