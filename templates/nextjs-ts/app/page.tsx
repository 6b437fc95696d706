import { People } from './people';

export default function Page() {
  return (
    <main>
      <h1>People</h1>
      <People />
    </main>
  );
}
