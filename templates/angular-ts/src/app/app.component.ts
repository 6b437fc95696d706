import { Component, signal } from '@angular/core';
import { injectReducer, injectSpacetimeDB, injectTable } from 'spacetimedb/angular';
import { reducers, tables } from '../module_bindings';

@Component({
  selector: 'app-root',
  template: `
    <main>
      <h1>People</h1>
      <p data-testid="status">{{ conn().isActive ? 'Connected' : 'Connecting...' }}</p>
      <p>Identity: <code data-testid="identity">{{ conn().identity?.toHexString() ?? '' }}</code></p>
      <form (submit)="onSubmit($event)">
        <input aria-label="Name" placeholder="Name" [value]="name()" (input)="name.set($any($event.target).value)" />
        <button type="submit">Add</button>
      </form>
      <ul data-testid="people">
        @for (person of people().rows; track $index) {
          <li>{{ person.name }}</li>
        }
      </ul>
    </main>
  `,
})
export class App {
  protected readonly conn = injectSpacetimeDB();
  protected readonly people = injectTable(tables.person);
  private readonly addPerson = injectReducer(reducers.add);
  protected readonly name = signal('');

  protected onSubmit(event: Event): void {
    event.preventDefault();
    const value = this.name().trim();
    if (value === '') return;
    void this.addPerson({ name: value });
    this.name.set('');
  }
}
