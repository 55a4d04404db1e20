import { Config, ConfigError, loadConfig } from '../src/config/config';

/**
 * What every command-line tool of the server starts with: the server's configuration and
 * the tool's arguments, each ending the tool with status 2 and one line when it is wrong.
 */

/** The server's configuration (DATABASE_URL, DATA_DIR …); a configuration error ends the tool. */
export function configOrExit(env: NodeJS.ProcessEnv = process.env): Config {
  try {
    return loadConfig(env);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    console.error(`Configuration error: ${e.message}`);
    process.exit(2);
  }
}

/** The tool's arguments as `parse` reads them; what it throws is the usage error that ends the tool. */
export function argumentsOrExit<T>(parse: (argv: string[]) => T): T {
  try {
    return parse(process.argv.slice(2));
  } catch (e) {
    console.error((e as Error).message);
    process.exit(2);
  }
}
