/**
 * The libvirt domain the recording script and the end-to-end test define:
 * a transient `type='qemu'` domain, machine `pc`, one virtio qcow2 disk with
 * a backing file, no graphics, no network — its <emulator> either the real
 * QEMU 7.2 or the blocksim stand-in.
 */
export function domainXml(opts: { name: string; emulator: string; disk: string }): string {
  return `<domain type='qemu'>
  <name>${opts.name}</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <emulator>${opts.emulator}</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='${opts.disk}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <memballoon model='none'/>
  </devices>
</domain>
`;
}
