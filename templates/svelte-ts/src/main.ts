import { mount } from 'svelte';
import Root from './Root.svelte';

export default mount(Root, { target: document.getElementById('app')! });
