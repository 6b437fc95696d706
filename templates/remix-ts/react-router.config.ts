import type { Config } from '@react-router/dev/config';

// Server rendering on: the page's shell comes from the server, the live list connects after hydration.
export default { ssr: true } satisfies Config;
