"""The pattern rows of the firmware (edk2, U-Boot) and the bootloaders (GRUB,
U-Boot's shell, FreeBSD's loader), in table order (see patterns.py)."""

from __future__ import annotations

from harness.console.rows import F, H, Kind, Pattern, S

ROWS: tuple[Pattern, ...] = (
    # --- firmware (edk2 / AAVMF) ---------------------------------------------------
    # PrePi prints this straight to the UART, so release builds show it too.
    Pattern(
        "edk2-banner", S, "firmware", r"UEFI firmware \(version", restart=True, once_per_start=True
    ),
    Pattern("edk2-boot-option", S, "firmware", r"BdsDxe: (?:loading|starting) Boot[0-9A-Fa-f]{4}"),
    # BDS hands the machine to the option's loader (GRUB, shim, the kernel's EFI stub):
    # what fails from here is the loader's doing. The firmware's own applications
    # (its shell, network boot) are still the firmware.
    Pattern(
        "edk2-start-loader",
        S,
        "bootloader",
        r'BdsDxe: starting Boot[0-9A-Fa-f]{4} "'
        r"(?!EFI Internal Shell|UEFI Shell|UEFI PXE|UEFI HTTP)",
    ),
    # BDS goes on with the next boot option; only a stall after it is a failure.
    Pattern(
        "edk2-boot-option-failed",
        H,
        "firmware",
        r"BdsDxe: failed to (?:load|start) Boot[0-9A-Fa-f]{4}",
        "firmware-no-boot",
    ),
    # StartImage returned: the loader ran and gave up (shim without its GRUB, an EFI
    # stub that could not relocate). A denial by Secure Boot never started it.
    Pattern(
        "edk2-loader-failed",
        F,
        "bootloader",
        r"BdsDxe: failed to start Boot[0-9A-Fa-f]{4} .*: (?!Access Denied|Security Violation)\w",
        "bootloader-no-boot",
    ),
    Pattern(
        "edk2-nothing-bootable",
        F,
        "firmware",
        r"No bootable option or device was found",
        "firmware-no-boot",
    ),
    # The disk was not bootable and the firmware went to the network: AAVMF's PXE and
    # HTTP attempts take minutes, so this decides now.
    Pattern(
        "uefi-network-boot",
        F,
        "firmware",
        r">>Start (?:PXE|HTTP Boot) over IPv[46]|iPXE initialising devices",
        "firmware-no-boot",
    ),
    Pattern(
        "uefi-shell",
        F,
        "firmware",
        r"UEFI Interactive Shell v\d|Press ESC in \d+ seconds to skip startup\.nsh",
        "firmware-no-boot",
    ),
    Pattern(
        "uefi-shell-prompt",
        Kind.FAIL_PROMPT,
        "firmware",
        r"^(?:Shell|FS\d+:\S*)> ?$",
        "firmware-no-boot",
    ),
    Pattern(
        "edk2-exception",
        F,
        "firmware",
        r"(?:Synchronous|SError|IRQ|FIQ) Exception at 0x[0-9A-Fa-f]+|ASSERT \[\w+\] \S+\(\d+\)"
        # U-Boot's exception handler (arch/arm/lib/interrupts_64.c), before it resets.
        r'|"(?:Synchronous Abort|SError|IRQ|FIQ)" handler, esr 0x',
        "firmware-crash",
    ),
    # --- firmware (U-Boot) ---------------------------------------------------------
    # Its banner (include/version.h U_BOOT_VERSION_STRING); -bios starts it at reset.
    Pattern(
        "u-boot-banner",
        S,
        "firmware",
        r"^U-Boot (?:SPL )?\d{4}\.\d{2}",
        restart=True,
        once_per_start=True,
    ),
    # Looking for something to boot: distro_bootcmd (include/config_distro_bootcmd.h,
    # up to 2023) or bootstd (boot/bootflow.c, bootdev-uclass.c, since 2023.04).
    Pattern(
        "u-boot-scan",
        S,
        "firmware",
        r"^Scanning (?:virtio|scsi|usb|mmc|nvme) \d+:\d+\.\.\.|^Scanning for bootflows "
        r"|^Scanning bootdev '",
    ),
    # Starting an EFI application: the removable-media path or a boot option
    # (cmd/bootefi.c, lib/efi_loader/efi_bootmgr.c, boot/bootflow.c).
    Pattern(
        "u-boot-efi-start",
        S,
        "firmware",
        r"^Found EFI removable media binary |^Booting /efi\\boot\\|^Booting: \S"
        r"|^\*\* Booting bootflow '",
    ),
    # A boot option or partition that did not work; U-Boot tries the next one.
    Pattern(
        "u-boot-boot-failed",
        H,
        "firmware",
        r"EFI LOAD FAILED|^Boot failed \(err=-?\d+\)|^Loading Boot[0-9A-Fa-f]{4} '.*' failed"
        r"|^\*\* No partition table - |^Couldn't find partition "
        r"|Cannot persist EFI variables without system partition|^No EFI system partition",
        "firmware-no-boot",
    ),
    # Every disk failed and U-Boot turned to the network (DHCP, then TFTP from a server
    # the cells do not have): nothing left to boot.
    Pattern(
        "u-boot-nothing-bootable",
        F,
        "firmware",
        r"^BOOTP broadcast \d+",
        "firmware-no-boot",
    ),
    # bootstd ran out of devices: U-Boot's `=>` shell comes next and decides (as the
    # 2023.01 distro_bootcmd's does), or, if the console stops here, this says why.
    Pattern("u-boot-no-more-bootdevs", H, "firmware", r"^No more bootdevs", "firmware-no-boot"),
    # --- bootloader (GRUB 2) -------------------------------------------------------
    Pattern("grub-banner", S, "bootloader", r"Welcome to GRUB!|GNU GRUB +version \d", restart=True),
    # FreeBSD's loader (stand/efi/loader/main.c, stand/common/boot.c).
    Pattern(
        "freebsd-loader",
        S,
        "bootloader",
        r"^FreeBSD/\w+ EFI loader, Revision|^Booting \[/boot/\S*kernel\S*\]",
    ),
    # Debian/Ubuntu grub.cfg echo lines and GRUB's own menu notice.
    Pattern(
        "grub-loading",
        S,
        "bootloader",
        r"^Loading Linux .*\.\.\.|^Loading initial ramdisk \.\.\."
        r"|^ *Booting (?:`[^']*'|a command list)",
        clears_hint=True,
    ),
    # "error: <msg>." (2.12 and Fedora add "file.c:NNN:"); good boots print many.
    Pattern("grub-error", H, "bootloader", r"^error: (?:\S+\.c:\d+:)?.+", "bootloader-error"),
    Pattern(
        "grub-gave-up",
        F,
        "bootloader",
        r"Failed to boot both default and fallback entries|you need to load the kernel first"
        r"|^Entering rescue mode\.\.\."
        # FreeBSD's loader without its kernel (stand/common/boot.c autoboot).
        r"|^can't load '\S*kernel'",
        "bootloader-no-boot",
    ),
    Pattern(
        "grub-prompt", Kind.FAIL_PROMPT, "bootloader", r"^grub(?: rescue)?> ?$", "bootloader-prompt"
    ),
    # U-Boot's own shell (CONFIG_SYS_PROMPT "=> "): its boot commands found nothing to boot.
    Pattern("u-boot-prompt", Kind.FAIL_PROMPT, "bootloader", r"^=> ?$", "bootloader-prompt"),
)
