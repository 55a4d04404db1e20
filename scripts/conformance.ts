/**
 * The IHE MHD black-box conformance suite (conformance/mhd) against a running server:
 *
 *   npm run conformance -- --base URL [--token TOKEN] [--examples DIR]
 *
 * The base URL defaults to BASE_URL, the token to TOKEN (a token allowed to create
 * Patients and documents in any record, e.g. `npm run token -- --test-client` on a
 * development server). DIR holds the official IHE and ANS examples (default
 * ../shared/reference/examples from the repository root; read in place). Prints one line
 * per check and `N passed, N failed` last; exits 1 when a check failed.
 */
import { defaultInputs, repositoryRoot, runMhdSuite } from '../conformance/mhd/suite';

function argument(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const base = argument('base') ?? process.env.BASE_URL;
  if (!base) {
    process.stderr.write('usage: npm run conformance -- --base URL [--token TOKEN] [--examples DIR]\n');
    process.exit(2);
  }
  const inputs = defaultInputs(repositoryRoot(__dirname));
  const { failed } = await runMhdSuite({ base, token: argument('token') ?? process.env.TOKEN, ...inputs, examplesDir: argument('examples') ?? inputs.examplesDir });
  process.exitCode = failed > 0 ? 1 : 0;
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exit(2);
});
