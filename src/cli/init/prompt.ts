// Terminal prompts for `spacetime init` and `spacetime dev`. A prompt is shown only when both stdin and stdout are a
// terminal; otherwise the caller must have an answer from a flag, and its error names that flag (CI and pipes never
// wait on a question nobody sees).
// Owns: the prompt texts' shape (question, default in brackets, numbered choices). May call: cli/util (stdin lines).
import { readStdinLine } from '../util.js';

/** Whether questions can be asked: both ends are a terminal. */
export function canPrompt(): boolean {
  return process.stdin.isTTY === true && process.stdout.isTTY === true;
}

/** `<question> [<default>]: `; an empty answer (or EOF) takes the default. */
export async function ask(question: string, defaultAnswer: string): Promise<string> {
  process.stdout.write(`${question} [${defaultAnswer}]: `);
  const line = await readStdinLine();
  const answer = (line ?? '').trim();
  return answer === '' ? defaultAnswer : answer;
}

/** A numbered list; the answer is a number or an item's label. Returns the chosen index. */
export async function choose(question: string, labels: readonly string[], defaultIndex = 0): Promise<number> {
  process.stdout.write(`${question}\n`);
  labels.forEach((label, i) => process.stdout.write(`  ${i + 1}) ${label}\n`));
  for (;;) {
    const answer = await ask('Choose a number', String(defaultIndex + 1));
    const n = Number(answer);
    if (Number.isInteger(n) && n >= 1 && n <= labels.length) return n - 1;
    const byLabel = labels.findIndex((l) => l === answer || l.split(' ')[0] === answer);
    if (byLabel >= 0) return byLabel;
    process.stdout.write(`Please answer 1-${labels.length}.\n`);
  }
}

/** `<question> [Y/n]`: empty means yes; EOF means the default too. */
export async function confirm(question: string): Promise<boolean> {
  process.stdout.write(`${question} [Y/n] `);
  const line = await readStdinLine();
  const answer = (line ?? '').trim().toLowerCase();
  return answer === '' || answer === 'y' || answer === 'yes';
}
