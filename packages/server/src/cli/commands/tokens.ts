import type { Command } from 'commander';
import { json, keyValues, print, table, time } from '../format.js';
import { context, run } from './common.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** `muster tokens`: access tokens; needs a token with admin on every namespace (the admin token at first). */
export function tokenCommands(program: Command): void {
  const tokens = program
    .command('tokens')
    .description('access tokens: create, list, revoke (needs an admin token: --access-token or MUSTER_TOKEN)');

  tokens
    .command('create')
    .description('create an access token; its secret is printed only this once')
    .requiredOption('--name <name>', 'what the token is for (shown in the audit trail)')
    .requiredOption(
      '--allow <rule>',
      'a rule right:namespace/service, right one of read, write, admin, * as a wildcard (repeat for more)',
      collect,
    )
    .action(
      run(async (opts: { name: string; allow: string[] }, cmd: Command) => {
        const { client, output } = context(cmd);
        const made = await client.createToken({ name: opts.name, rules: opts.allow });
        if (output === 'json') return print(json(made));
        print(
          keyValues([
            ['id', made.token.id],
            ['name', made.token.name],
            ['rules', made.token.rules.join(' ')],
          ]),
        );
        print(
          `\n${made.secret}\n\nKeep the secret now: it is not shown again. Use it as MUSTER_TOKEN or Authorization: Bearer.`,
        );
      }),
    );

  tokens
    .command('list')
    .alias('ls')
    .description('the access tokens (never their secrets)')
    .option('--revoked', 'include revoked tokens')
    .action(
      run(async (opts: { revoked?: boolean }, cmd: Command) => {
        const { client, output } = context(cmd);
        const list = await client.listTokens({ revoked: opts.revoked === true });
        if (output === 'json') return print(json(list));
        print(
          table(
            ['ID', 'NAME', 'RULES', 'CREATED', 'BY', 'REVOKED'],
            list.map((t) => [
              t.id,
              t.name,
              t.rules.join(' '),
              time(t.createdAt),
              t.createdBy,
              t.revokedAt ? time(t.revokedAt) : '',
            ]),
          ),
        );
      }),
    );

  tokens
    .command('revoke')
    .description('revoke a token by id or name: refused at once, on every node')
    .argument('<token>', "the token's id or name")
    .action(
      run(async (ref: string, _opts: unknown, cmd: Command) => {
        const { client, output } = context(cmd);
        const t = await client.revokeToken(ref);
        if (output === 'json') return print(json(t));
        print(`revoked ${t.id} (${t.name})`);
      }),
    );
}
