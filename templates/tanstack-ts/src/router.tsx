import { createRouter } from '@tanstack/react-router';
import { routeTree } from './routeTree.gen';

/** TanStack Start calls this once per server request and once in the browser. */
export function getRouter() {
  return createRouter({ routeTree, scrollRestoration: true });
}

declare module '@tanstack/react-router' {
  interface Register {
    router: ReturnType<typeof getRouter>;
  }
}
